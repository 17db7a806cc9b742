# Sync kubesalt's loader modules (modules, states, grains) from the master to this minion,
# before any state that renders with them. Reports changes only when a module changed.

Sync kubesalt's loader modules to this minion:
  saltutil.sync_all:
    - refresh: true

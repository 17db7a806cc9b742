# salt-run state.orchestrate kubesalt.orchestrate.renew_certificates saltenv=kubesalt-<version>
# salt-run state.orchestrate kubesalt.orchestrate.renew_certificates saltenv=... pillar='{"force": true}'
# Renews the certificates due within pki.renewBeforeDays on every declared node (pillar
# nodes limits it; renew_before_days and force override the window for this run):
# control-plane and etcd nodes one at a time, workers together. Run daily by the bootstrap
# node's schedule. The phases are data (kubesalt.orchestrate.tables): docs/orchestrations.md.

Run the renew_certificates orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: renew_certificates
    - saltenv: {{ saltenv | yaml_dquote }}

# salt-run state.orchestrate kubesalt.orchestrate.bootstrap (run by bootstrap.sh):
# accept the bootstrap node's own minion key (only if it is the key on this host), check
# that the minion answers, sync kubesalt's modules to it, and apply the bootstrap role
# through the master, then its highstate (its other roles: control-plane, etcd, node; the
# first etcd member and the first holder of the API VIP). A second run changes nothing.
{#- The bootstrap node's minion ID: given by bootstrap.sh, else the CA minion (the same node). #}
{%- set minion = salt['pillar.get']('kubesalt_bootstrap:minion') or salt['pillar.get']('kubesalt:ca:minion') %}

Accept the key of the bootstrap node's minion:
  kubesalt_salt_key.accepted:
    - name: {{ minion | yaml_dquote }}
    - public_key: /etc/salt/pki/minion/minion.pub
    - wait: 90

Check that the bootstrap node's minion answers:
  kubesalt_salt_key.responds:
    - name: {{ minion | yaml_dquote }}
    - wait: 90
    - require:
      - kubesalt_salt_key: Accept the key of the bootstrap node's minion

Sync kubesalt's loader modules to the bootstrap node:
  salt.state:
    - tgt: {{ minion | yaml_dquote }}
    - sls: kubesalt.salt.minion.synced
    - saltenv: {{ saltenv | yaml_dquote }}
    - require:
      - kubesalt_salt_key: Check that the bootstrap node's minion answers

Apply the bootstrap role to the bootstrap node:
  salt.state:
    - tgt: {{ minion | yaml_dquote }}
    - sls: kubesalt.roles.bootstrap
    - saltenv: {{ saltenv | yaml_dquote }}
    - require:
      - salt: Sync kubesalt's loader modules to the bootstrap node

Apply the highstate to the bootstrap node:
  salt.state:
    - tgt: {{ minion | yaml_dquote }}
    - highstate: true
    - saltenv: {{ saltenv | yaml_dquote }}
    - require:
      - salt: Apply the bootstrap role to the bootstrap node

# Applied to a new node through salt-ssh by the deploy_node orchestration (phase minion),
# or through the node's running minion (test=True first), with pillar kubesalt_deploy
# computed once per run on the bootstrap node (kubesalt.orchestrate.minionpillar):
# the cluster CA trusted, the bootstrap node's apt repository over HTTPS, Salt and kubesalt
# in the bootstrap node's own virtualenv, downloaded and checked against its sha256
# (nothing from the internet), and
# salt-minion configured toward the master with the same configuration code as bootstrap.sh.
{%- set d = pillar['kubesalt_deploy'] %}

Trust the cluster CA that signs the bootstrap node's repository certificate:
  file.managed:
    - name: /usr/local/share/ca-certificates/kubesalt-ca.crt
    - contents: {{ d.ca_pem | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true

Add the cluster CA to the system trust store:
  cmd.run:
    - name: update-ca-certificates
    - onchanges:
      - file: Trust the cluster CA that signs the bootstrap node's repository certificate

Install the signing key of the {{ d.saltenv }} apt repository:
  file.managed:
    - name: {{ d.keyring | yaml_dquote }}
    - contents: {{ d.keyring_asc | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true

Declare the {{ d.saltenv }} apt repository of the bootstrap node:
  file.managed:
    - name: {{ d.sources_path | yaml_dquote }}
    - contents: {{ d.sources | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: Install the signing key of the {{ d.saltenv }} apt repository
      - cmd: Add the cluster CA to the system trust store

{#- Refreshed until it succeeded after the last change of the source or key (apt gives its
    index files the server's dates, so a stamp of our own records the refresh). The node's
    later states install its packages from this index without refreshing it
    (kubesalt.packages). #}
{%- set stamp = '/var/lib/apt/lists/kubesalt-' ~ d.saltenv ~ '.refreshed' %}

Refresh the index of the {{ d.saltenv }} apt repository:
  cmd.run:
    - name: {{ (d.apt_update ~ ' && touch ' ~ stamp) | yaml_dquote }}
    - unless: {{ ('test ' ~ stamp ~ ' -nt ' ~ d.sources_path ~ ' && test ' ~ stamp ~ ' -nt ' ~ d.keyring) | yaml_dquote }}
    - require:
      - file: Declare the {{ d.saltenv }} apt repository of the bootstrap node

{#- Salt and kubesalt come as the bootstrap node's own virtualenv (bootstrap.sh archives
    it: kubesalt.bootstrap.saltvenv), as every node has the same Debian python at the same
    path: one download and one unpack instead of pip installing ~40 wheels on every node.
    python3-venv is not installed: it only creates virtualenvs (ensurepip); the venv's
    python is a symlink to /usr/bin/python3 and its pip travels inside it.
    Nothing is downloaded when the venv already holds kubesalt at this version; Salt keeps
    no cached copy of the download (keep_source), which is removed once unpacked. #}
{%- set v = d.salt_venv %}
{%- set new = d.venv ~ '.new' %}
{%- set holds_version = d.venv ~ "/bin/python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version(\"kubesalt\") != \"" ~ d.version ~ "\")' 2>/dev/null" %}

Download the Salt virtualenv of kubesalt {{ d.version }} from the bootstrap node:
  file.managed:
    - name: {{ v.download | yaml_dquote }}
    - source: {{ v.url | yaml_dquote }}
    - source_hash: {{ ('sha256=' ~ v.sha256) | yaml_dquote }}
    - keep_source: false
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - unless: {{ holds_version | yaml_dquote }}
    - require:
      - cmd: Add the cluster CA to the system trust store

{#- Unpacked beside the venv, then renamed over it: a failed unpack leaves no half venv
    that the version check would take for a whole one. #}

Install Salt and kubesalt {{ d.version }} from the bootstrap node's Salt virtualenv:
  cmd.run:
    - name: >-
        rm -rf {{ new }} && mkdir -p {{ new }}
        && tar -xzf {{ v.download }} -C {{ new }} --no-same-owner
        && rm -rf {{ d.venv }} && mv {{ new }} {{ d.venv }} && rm -f {{ v.download }}
    - unless: {{ holds_version | yaml_dquote }}
    - require:
      - file: Download the Salt virtualenv of kubesalt {{ d.version }} from the bootstrap node

Link salt-call to the Salt virtualenv:
  file.symlink:
    - name: /usr/local/bin/salt-call
    - target: {{ d.venv }}/bin/salt-call
    - require:
      - cmd: Install Salt and kubesalt {{ d.version }} from the bootstrap node's Salt virtualenv

Write the salt-minion configuration:
  file.managed:
    - name: /etc/salt/minion.d/kubesalt.conf
    - contents: {{ d.minion_configs[grains['id']] | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true

Write the salt-minion systemd unit:
  file.managed:
    - name: /etc/systemd/system/salt-minion.service
    - contents: {{ d.minion_unit | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'

{#- A running minion restarts on its new configuration, unit or virtualenv, and this run
    waits for it: salt-ssh applies this file, so no job of the minion is cut. Not a watch
    of "Run salt-minion": Salt restarts the salt-minion service with --no-block, so the
    orchestration's next job would reach the old process and be lost when it stops (an
    upgrade waited 300 s for such a job). try-restart leaves a minion that does not run yet
    to the state below. #}
Restart a running salt-minion on its new configuration or virtualenv:
  cmd.run:
    - name: systemctl daemon-reload && systemctl try-restart salt-minion
    - onchanges:
      - file: Write the salt-minion configuration
      - file: Write the salt-minion systemd unit
      - cmd: Install Salt and kubesalt {{ d.version }} from the bootstrap node's Salt virtualenv

Run salt-minion:
  service.running:
    - name: salt-minion
    - enable: true
    - require:
      - cmd: Install Salt and kubesalt {{ d.version }} from the bootstrap node's Salt virtualenv
      - cmd: Restart a running salt-minion on its new configuration or virtualenv

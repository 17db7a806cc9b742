# Applied to a new node through salt-ssh by the deploy_node orchestration (phase minion),
# or through the node's running minion (test=True first), with pillar kubesalt_deploy
# computed once per run on the bootstrap node (kubesalt.orchestrate.minionpillar):
# the cluster CA trusted, the bootstrap node's apt repository over HTTPS, Salt and kubesalt
# in their virtualenv from the bootstrap node's wheels (nothing from the internet), and
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
    index files the server's dates, so a stamp of our own records the refresh). #}
{%- set stamp = '/var/lib/apt/lists/kubesalt-' ~ d.saltenv ~ '.refreshed' %}

Refresh the index of the {{ d.saltenv }} apt repository:
  cmd.run:
    - name: {{ (d.apt_update ~ ' && touch ' ~ stamp) | yaml_dquote }}
    - unless: {{ ('test ' ~ stamp ~ ' -nt ' ~ d.sources_path ~ ' && test ' ~ stamp ~ ' -nt ' ~ d.keyring) | yaml_dquote }}
    - require:
      - file: Declare the {{ d.saltenv }} apt repository of the bootstrap node

{#- The archive's version, from its repository alone (kubesalt.packages.install_options). #}

Install python3-venv from the bootstrap node's repository:
  pkg.installed:
    - pkgs: {{ d.python3_venv.pkgs | json }}
    - fromrepo: {{ d.python3_venv.fromrepo | yaml_dquote }}
    - refresh: {{ d.python3_venv.refresh | json }}
    - install_recommends: {{ d.python3_venv.install_recommends | json }}
    - require:
      - cmd: Refresh the index of the {{ d.saltenv }} apt repository

Create the Salt virtualenv:
  cmd.run:
    - name: /usr/bin/python3 -m venv {{ d.venv }}
    - creates: {{ d.venv }}/bin/python3
    - require:
      - pkg: Install python3-venv from the bootstrap node's repository

{#- --no-compile: compiling every module of Salt took most of the install's time; Python
    compiles what it imports, once, when it first imports it. #}

Install Salt and kubesalt {{ d.version }} from the bootstrap node's wheels:
  cmd.run:
    - name: >-
        {{ d.venv }}/bin/python3 -m pip install --no-index --disable-pip-version-check
        --no-cache-dir --no-compile --quiet --cert /usr/local/share/ca-certificates/kubesalt-ca.crt
        --find-links {{ d.wheels }} salt kubesalt=={{ d.version }}
    - unless: {{ (d.venv ~ "/bin/python3 -m pip show kubesalt 2>/dev/null | grep -qx 'Version: " ~ d.version ~ "'") | yaml_dquote }}
    - require:
      - cmd: Create the Salt virtualenv

Link salt-call to the Salt virtualenv:
  file.symlink:
    - name: /usr/local/bin/salt-call
    - target: {{ d.venv }}/bin/salt-call
    - require:
      - cmd: Install Salt and kubesalt {{ d.version }} from the bootstrap node's wheels

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

Run salt-minion:
  service.running:
    - name: salt-minion
    - enable: true
    - require:
      - cmd: Install Salt and kubesalt {{ d.version }} from the bootstrap node's wheels
    - watch:
      - file: Write the salt-minion configuration
      - file: Write the salt-minion systemd unit

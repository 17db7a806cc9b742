# One apt source per registered archive, file:// on this node (which holds the archives),
# signed by the archive's key; the index of that source alone is refreshed when it changes.
# The sources and keys of archives no longer registered (kubesalt-iso remove) go.
{%- for source in salt['kubesalt_bootstrap.apt_sources']() %}

Install the signing key of the {{ source.saltenv }} apt repository:
  file.managed:
    - name: {{ source.keyring | yaml_dquote }}
    - source: {{ ('file://' ~ source.keyring_source) | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true

Declare the {{ source.saltenv }} apt repository:
  file.managed:
    - name: {{ source.path | yaml_dquote }}
    - contents: {{ source.contents | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: Install the signing key of the {{ source.saltenv }} apt repository

Refresh the index of the {{ source.saltenv }} apt repository:
  cmd.run:
    - name: {{ source['update'] | yaml_dquote }}
    - onchanges:
      - file: Install the signing key of the {{ source.saltenv }} apt repository
      - file: Declare the {{ source.saltenv }} apt repository
{%- endfor %}
{%- for path in salt['kubesalt_bootstrap.stale_apt_files']() %}

Remove {{ path }}, of an archive no longer registered:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- endfor %}

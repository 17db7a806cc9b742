# Install keepalived at the version the archive pins, from the archive's repository alone
# (kubesalt_packages.install_options; docs/states.md).
{%- set install = salt['kubesalt_packages.install_options']('keepalived') %}

Install the keepalived package:
  pkg.installed:
    - pkgs: {{ install.pkgs | json }}
    - fromrepo: {{ install.fromrepo | yaml_dquote }}
    - refresh: {{ install.refresh | json }}
    - install_recommends: {{ install.install_recommends | json }}

# Each role maps to its formula; roles come from the inventory (pillar kubesalt:nodes).
{{ saltenv }}:
  '*':
    - kubesalt.node

{{ saltenv }}:
  '*':
    - kubesalt.mine

# Salt on the bootstrap node: the master and its own minion.
include:
  - .master
  - .minion

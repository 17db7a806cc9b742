include:
  - .grains

#!/bin/sh
# The app: greets whoever it is asked to.
greet() {
  printf 'Hello, %s!\n' "${1:-world}"
}

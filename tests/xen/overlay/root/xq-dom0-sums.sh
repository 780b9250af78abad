#!/bin/bash
# xq-dom0-sums.sh init|check - is dom0's memory intact? The hypervisor
# frees and hands out frames as guests' pages are reclaimed, restored and
# their domains destroyed; a frame freed while still in use would show up
# in dom0 as changed file pages or changed process memory. init records
# sums of the guest kernel and initrd (as read through the page cache) and
# of a 64 MiB random canary in tmpfs; check compares (exit 1, and says
# what changed).
S=/tmp/dom0-sums
files="/root/guest/vmlinuz /root/guest/initrd.gz /tmp/dom0-canary"
case "$1" in
init)
  head -c 64M /dev/urandom > /tmp/dom0-canary
  md5sum $files > $S ;;
check)
  out=$(md5sum --quiet -c $S 2>&1) && exit 0
  echo "changed: $(echo "$out" | tr '\n' ' ')"; exit 1 ;;
*) echo "usage: $0 init|check" >&2; exit 2 ;;
esac

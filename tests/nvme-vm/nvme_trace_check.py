#!/usr/bin/env python3
"""Host half of the device-side FUA/flush check (ctest nvme_vm_smoke).

Reads QEMU's trace of the commands the emulated NVMe controller received
(run-vm.sh --trace 'pci_nvme_io_cmd,pci_nvme_read,pci_nvme_write,pci_nvme_flush_ns') and
the guest's console, where tests/passthru/pt_trace_workload.c printed, per
window, what the device must have seen (URT-CHK lines) and the guest
kernel's nvme_setup_cmd records of the window (URT-KTRACE lines).

For every window it:
  1. cuts the window out of QEMU's trace between its two marker commands
     (a one-block Write Zeroes at the begin and end LBAs);
  2. matches every command the guest driver put on a submission queue in
     the window to one the device received: same queue, cid, opcode, nsid,
     and for reads and writes the same LBA and block count.  A command the
     device never received is a failure;
  3. counts at the device: Flush commands (opcode 00h) from QEMU's trace;
     writes with FUA (CDW12 bit 30, ctrl bit 14 in the kernel's record)
     and plain writes among the matched commands.  QEMU 7.2's trace does
     not show CDW12 and its controller ignores FUA, so the bit comes from
     the submission-queue entry as the driver wrote it;
  4. compares with the window's claim.  A "want pass" window must match
     exactly; a "want fail" window (FUA or flushes dropped on purpose but
     still claimed) must NOT match, on counts taken between markers that
     were found: that proves the check goes red.

Usage: nvme_trace_check.py [TRACE CONSOLE]; without arguments it reads the
paths from URT_VM_TRACE and URT_VM_CONSOLE (run-vm.sh --check sets them).
Exit 0 when every window is as wanted, 1 otherwise, 2 on bad input.
"""

import os
import re
import sys

OPC = {"nvme_cmd_flush": 0x00, "nvme_cmd_write": 0x01, "nvme_cmd_read": 0x02, "nvme_cmd_write_zeroes": 0x08}
OPC_WRITE_ZEROES = 0x08
NVME_RW_FUA_CTRL = 1 << 14  # CDW12 bit 30 is bit 14 of the 16-bit control field.

RE_IO_CMD = re.compile(r"pci_nvme_io_cmd cid (\d+) nsid 0x([0-9a-f]+) sqid (\d+) opc 0x([0-9a-f]+)")
RE_RW = re.compile(r"pci_nvme_(?:read|write) cid (\d+) (?:opname '\w+' )?nsid (\d+) nlb (\d+) count \d+ "
                   r"lba 0x([0-9a-f]+)")
RE_WIN = re.compile(r"URT-CHK window (\S+) nsid (\d+) begin (\d+) end (\d+) fua (\d+) flush (\d+) "
                    r"plain (\d+|-) want (pass|fail)")
RE_KT = re.compile(r"URT-KTRACE (\S+) .*nvme_setup_cmd: \S+ disk=\S+ qid=(\d+), cmdid=(\d+), nsid=(\d+), "
                   r".*cmd=\((\w+)(.*)\)")
RE_KT_RW = re.compile(r"slba=(\d+), len=(\d+), ctrl=0x([0-9a-f]+)")


def die(msg):
    print("nvme_trace_check: " + msg, file=sys.stderr)
    sys.exit(2)


def read_device(path):
    """The commands QEMU's controller received, in order."""
    cmds = []
    last = {}  # cid -> index of its latest io_cmd
    with open(path, errors="replace") as f:
        for line in f:
            m = RE_IO_CMD.search(line)
            if m:
                cid = int(m.group(1))
                last[cid] = len(cmds)
                cmds.append({"cid": cid, "nsid": int(m.group(2), 16), "sqid": int(m.group(3)),
                             "opc": int(m.group(4), 16), "lba": None, "nlb": None})
                continue
            m = RE_RW.search(line)
            if m and int(m.group(1)) in last:
                c = cmds[last[int(m.group(1))]]
                c["lba"] = int(m.group(4), 16)
                c["nlb"] = int(m.group(3))
    return cmds


def read_console(path):
    wins, ktrace, done = [], {}, False
    with open(path, errors="replace") as f:
        for line in f:
            m = RE_WIN.search(line)
            if m:
                wins.append({"name": m.group(1), "nsid": int(m.group(2)), "begin": int(m.group(3)),
                             "end": int(m.group(4)), "fua": int(m.group(5)), "flush": int(m.group(6)),
                             "plain": None if m.group(7) == "-" else int(m.group(7)),
                             "want_pass": m.group(8) == "pass"})
                continue
            m = RE_KT.search(line)
            if m:
                rec = {"qid": int(m.group(2)), "cid": int(m.group(3)), "nsid": int(m.group(4)),
                       "opname": m.group(5), "opc": OPC.get(m.group(5)), "lba": None, "nlb": None, "ctrl": 0}
                rw = RE_KT_RW.search(m.group(6))
                if rw:
                    rec["lba"], rec["nlb"], rec["ctrl"] = int(rw.group(1)), int(rw.group(2)) + 1, int(rw.group(3), 16)
                ktrace.setdefault(m.group(1), []).append(rec)
                continue
            if "URT-CHK done windows" in line:
                done = True
    return wins, ktrace, done


def marker_index(cmds, nsid, lba):
    hits = [i for i, c in enumerate(cmds)
            if c["opc"] == OPC_WRITE_ZEROES and c["nsid"] == nsid and c["lba"] == lba]
    return hits


def check_window(w, cmds, krecs):
    """Returns (counts, problems): what the device saw and why it differs from the claim."""
    problems = []
    b = marker_index(cmds, w["nsid"], w["begin"])
    e = marker_index(cmds, w["nsid"], w["end"])
    if len(b) != 1 or len(e) != 1 or b[0] >= e[0]:
        return None, ["markers not found once each in QEMU's trace (begin LBA %d: %d, end LBA %d: %d)"
                      % (w["begin"], len(b), w["end"], len(e))]
    dev = [c for c in cmds[b[0] + 1:e[0]] if c["nsid"] == w["nsid"]]
    # The driver's side of the same window: between its records of the two markers.
    kb = [i for i, k in enumerate(krecs) if k["opc"] == OPC_WRITE_ZEROES and k["nsid"] == w["nsid"]
          and k["lba"] == w["begin"]]
    ke = [i for i, k in enumerate(krecs) if k["opc"] == OPC_WRITE_ZEROES and k["nsid"] == w["nsid"]
          and k["lba"] == w["end"]]
    if len(kb) != 1 or len(ke) != 1 or kb[0] >= ke[0]:
        return None, ["markers not found once each in the guest kernel's trace (begin: %d, end: %d)"
                      % (len(kb), len(ke))]
    krecs = [k for k in krecs[kb[0] + 1:ke[0]] if k["nsid"] == w["nsid"]]
    used = [False] * len(dev)
    fua = plain = 0
    for k in krecs:
        if k["opc"] is None:
            problems.append("the driver sent %s, which this check does not know" % k["opname"])
            continue
        for i, c in enumerate(dev):
            if used[i] or c["sqid"] != k["qid"] or c["cid"] != k["cid"] or c["opc"] != k["opc"]:
                continue
            if k["lba"] is not None and (c["lba"] != k["lba"] or c["nlb"] != k["nlb"]):
                continue
            used[i] = True
            break
        else:
            problems.append("the driver sent %s qid %d cid %d%s, but the device never received it"
                            % (k["opname"], k["qid"], k["cid"],
                               "" if k["lba"] is None else " LBA %d +%d" % (k["lba"], k["nlb"])))
            continue
        if k["opc"] == 0x01:
            if k["ctrl"] & NVME_RW_FUA_CTRL:
                fua += 1
            else:
                plain += 1
    flush = sum(1 for c in dev if c["opc"] == 0x00)
    counts = {"fua": fua, "flush": flush, "plain": plain, "device_cmds": len(dev), "driver_cmds": len(krecs)}
    if fua != w["fua"]:
        problems.append("%d FUA writes reached the device, %d claimed" % (fua, w["fua"]))
    if flush != w["flush"]:
        problems.append("%d flushes reached the device, %d claimed" % (flush, w["flush"]))
    if w["plain"] is not None and plain != w["plain"]:
        problems.append("%d plain writes reached the device, %d claimed" % (plain, w["plain"]))
    return counts, problems


def main():
    if len(sys.argv) == 3:
        trace, console = sys.argv[1], sys.argv[2]
    elif len(sys.argv) == 1:
        trace, console = os.environ.get("URT_VM_TRACE", ""), os.environ.get("URT_VM_CONSOLE", "")
    else:
        die("usage: nvme_trace_check.py [TRACE CONSOLE]")
    if not trace or not os.path.isfile(trace):
        die("no QEMU trace file (%r): run the guest with run-vm.sh --trace" % trace)
    if not console or not os.path.isfile(console):
        die("no console log (%r)" % console)
    cmds = read_device(trace)
    wins, ktrace, done = read_console(console)
    if not done:
        print("FAIL: the workload did not finish (no 'URT-CHK done' line on the console)")
        return 1
    if not cmds:
        print("FAIL: QEMU's trace holds no NVMe I/O command (were pci_nvme_io_cmd, pci_nvme_read and pci_nvme_write traced?)")
        return 1
    # A check that cannot fail is no check: demand a FUA claim, a flush claim and a negative window.
    if not any(w["want_pass"] and w["fua"] for w in wins) or \
       not any(w["want_pass"] and w["flush"] for w in wins) or \
       not any(not w["want_pass"] for w in wins):
        print("FAIL: the workload claimed no FUA write, no flush or no negative window: nothing to check")
        return 1
    bad = 0
    print("%-10s %-5s %12s %12s %12s %9s  %s" % ("window", "want", "FUA dev/exp", "flush d/e", "plain d/e",
                                                 "cmds", "verdict"))
    for w in wins:
        counts, problems = check_window(w, cmds, ktrace.get(w["name"], []))
        ok = not problems
        # A negative window must go red on what reached the device: red because its
        # markers were not found proves nothing about the FUA or flush count.
        good = ok == w["want_pass"] and counts is not None
        bad += not good
        if counts:
            print("%-10s %-5s %12s %12s %12s %9s  %s" % (
                w["name"], "pass" if w["want_pass"] else "fail",
                "%d/%d" % (counts["fua"], w["fua"]), "%d/%d" % (counts["flush"], w["flush"]),
                "%d/%s" % (counts["plain"], "-" if w["plain"] is None else w["plain"]),
                "%d/%d" % (counts["device_cmds"], counts["driver_cmds"]),
                ("ok" if ok else "red, as it must be") if good else "WRONG"))
        else:
            print("%-10s %-5s  %s" % (w["name"], "pass" if w["want_pass"] else "fail", "WRONG"))
        for p in problems:
            print("    %s: %s" % (w["name"], p))
        if not good and ok:
            print("    %s: the check did not notice what the workload dropped" % w["name"])
        if not w["want_pass"] and counts is None:
            print("    %s: a negative window whose markers were not found checks nothing" % w["name"])
    print("nvme_trace_check: %s (%d windows, %d QEMU commands)" % ("PASS" if not bad else "FAIL", len(wins),
                                                                   len(cmds)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Drive slxsh over SSH like automation clients do; print a JSON report.

Run with /usr/bin/python3 (Debian's, which has netmiko) inside the network
namespace where the test's sshd listens:

    drive.py HOST PORT USER KEYFILE LOGDIR MODE

MODE "offline": each SSH session is its own slxsh --offline (configuration
in memory). MODE "agent": the sessions share aclagent; cisco_ios configures,
then an extreme_slx session only saves (save_config) and shows the
startup-config, and the scripted session after them shows the configuration.

extreme_slx's save_config sends `copy running-config startup-config`, then
"y" for SLX-OS's confirmation question; its output is reported as "saved"
with `show startup-config` after it as "startup".

For each Netmiko device type (cisco_ios, extreme_slx) it connects, finds the
prompt, sends the SLX example with send_config_set, and runs show commands;
the raw bytes Netmiko read are kept in LOGDIR/<type>.log. A bare paramiko
channel (vt100, 80x24, as Ansible network_cli opens it) checks the exact
bytes of the first prompt and Ansible's IOS prompt pattern.
"""
import json
import re
import sys
import time

import paramiko
from netmiko import ConnectHandler

HOST, PORT, USER, KEY, LOGDIR, MODE = (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])

SLX_EXAMPLE = [
    "ip access-list extended check",
    "permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3",
    "exit",
    "interface management 0",
    "ip access-group check in",
]

# ansible_collections/cisco/ios/plugins/terminal/ios.py terminal_stdout_re
ANSIBLE_PROMPT = re.compile(rb"[\r\n]?[\w\+\-\.:\/\[\]]+(?:\([^\)]+\)){0,3}(?:[>#]) ?$")


def netmiko_session(device_type, configure=True):
    log = "%s/%s.log" % (LOGDIR, device_type)
    conn = ConnectHandler(
        device_type=device_type, host=HOST, port=PORT, username=USER,
        key_file=KEY, use_keys=True, allow_agent=False, timeout=20,
        session_log=log, fast_cli=False,
    )
    r = {"log": log}
    r["prompt"] = conn.find_prompt()
    if configure:
        r["config"] = conn.send_config_set(SLX_EXAMPLE)
        r["prompt_after_config"] = conn.find_prompt()
        r["running"] = conn.send_command("show running-config")
        r["version"] = conn.send_command("show version")
        r["invalid"] = conn.send_command("show bogus-command")
        r["filtered"] = conn.send_command("show running-config | include seq")
    if device_type == "extreme_slx":
        r["saved"] = conn.save_config()
        r["prompt_after_save"] = conn.find_prompt()
        r["startup"] = conn.send_command("show startup-config")
    conn.disconnect()
    return r


def read_until(chan, pattern, limit=15.0):
    buf = b""
    end = time.time() + limit
    while time.time() < end:
        if chan.recv_ready():
            buf += chan.recv(65536)
            if pattern.search(buf):
                return buf
        else:
            time.sleep(0.02)
    return buf


def ansible_like():
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(HOST, port=PORT, username=USER, key_filename=KEY,
                   allow_agent=False, look_for_keys=False, timeout=20)
    chan = client.invoke_shell(term="vt100", width=80, height=24)
    r = {}
    first = read_until(chan, ANSIBLE_PROMPT)
    r["first"] = first.decode("latin-1")
    r["first_matches"] = bool(ANSIBLE_PROMPT.search(first))
    # network_cli sends commands ending in CR
    chan.send(b"show version\r")
    out = read_until(chan, re.compile(rb"show version[\s\S]*" + ANSIBLE_PROMPT.pattern))
    r["show_version"] = out.decode("latin-1")
    r["show_version_matches"] = bool(ANSIBLE_PROMPT.search(out))
    client.close()
    return r


def scripted(script):
    """`ssh host slxsh < script`: no PTY, the script on stdin."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(HOST, port=PORT, username=USER, key_filename=KEY,
                   allow_agent=False, look_for_keys=False, timeout=20)
    stdin, stdout, stderr = client.exec_command("slxsh", timeout=20)
    stdin.write(script)
    stdin.channel.shutdown_write()
    out = stdout.read().decode("latin-1")
    err = stderr.read().decode("latin-1")
    status = stdout.channel.recv_exit_status()
    client.close()
    return {"stdout": out, "stderr": err, "status": status}


def main():
    report = {}
    for dt in ("cisco_ios", "extreme_slx"):
        try:
            # agent: the configuration made by cisco_ios is saved by extreme_slx
            report[dt] = netmiko_session(dt, MODE == "offline" or dt == "cisco_ios")
        except Exception as e:  # reported, the Go test fails on it
            report[dt] = {"exception": "%s: %s" % (type(e).__name__, e)}
    try:
        report["ansible_like"] = ansible_like()
    except Exception as e:
        report["ansible_like"] = {"exception": "%s: %s" % (type(e).__name__, e)}
    example = "conf term\n" + "\n".join(SLX_EXAMPLE) + "\nend\nshow running-config\n"
    if MODE == "agent":  # configured already by the Netmiko session
        example = "show running-config\n"
    bad = "configure terminal\nip access-list extended a\npermit tcp any any bogus\nend\n"
    for name, script in (("scripted_ok", example), ("scripted_bad", bad)):
        try:
            report[name] = scripted(script)
        except Exception as e:
            report[name] = {"exception": "%s: %s" % (type(e).__name__, e)}
    json.dump(report, sys.stdout)


main()

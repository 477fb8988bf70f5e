"""Push a config file to slxsh with Netmiko's extreme_slx driver, save it,
and show the result. Re-running it changes nothing and gives no error."""
import os
import sys

from netmiko import ConnectHandler

conn = ConnectHandler(
    device_type="extreme_slx",
    host=os.environ.get("SLX_HOST", "edge1"),
    port=int(os.environ.get("SLX_PORT", "22")),
    username=os.environ.get("SLX_USER", "netops"),
    key_file=os.environ.get("SLX_KEY"),  # or password=...
    use_keys=True,
)
for run in ("first", "second"):
    out = conn.send_config_from_file(sys.argv[1])
    print("--- %s push\n%s" % (run, out))
    if "%" in out:
        sys.exit("error in %s push" % run)
print("--- save\n" + conn.save_config())
print("--- count\n" + conn.send_command("show running-config | include seq | count"))
print("--- files\n" + conn.send_command('show access-list ip files | include "eq 9001"'))
conn.disconnect()

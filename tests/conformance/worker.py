"""The conformance worker for the Python SDK; behaves as worker_c.c."""
import os
import time

import memsup

counter = 0


@memsup.on_save
def save():
    if os.environ.get("CONF_FAIL_SAVE"):
        raise OSError("conformance: save fails on purpose")
    return b"conformance counter=%d\n" % counter


memsup.init()
was_active = memsup.active()
print("init active=%d" % was_active, flush=True)
data = memsup.restore()
if data is not None:
    try:
        counter = int(data.decode().split("=")[1])
    except (ValueError, IndexError):
        counter = -1
    print("restore restored %d" % counter, flush=True)
else:
    print("restore %s" % memsup.restore_status(), flush=True)
counter += 1
memsup.gauge_set("conf.counter", counter)
memsup.ready()
print("ready", flush=True)
try:
    sent = memsup.checkpoint()
except OSError:
    sent = False
print("checkpoint %s" % ("sent" if sent else "failed"), flush=True)


def after_gone():
    print("gone", flush=True)
    # Every call must stay harmless once memsup has gone.
    memsup.gauge_set("conf.after", 1)
    memsup.report()
    memsup.checkpoint()
    memsup.process()
    print("after-gone alive", flush=True)


async def main_async():
    # CONF_ASYNCIO: the event-loop integration (fileno/process) through
    # memsup.serve() instead of the helper thread.
    global was_active
    task = asyncio.create_task(memsup.serve())
    while True:
        await asyncio.sleep(0.02)
        if was_active and not memsup.active():
            was_active = False
            await task
            after_gone()


if os.environ.get("CONF_ASYNCIO"):
    import asyncio
    asyncio.run(main_async())
memsup.start_thread()
while True:
    time.sleep(0.02)
    if was_active and not memsup.active():
        was_active = False
        after_gone()

"""Reading a stream's windows in a thread ahead of their scoring (`read_ahead`), so a live source
is read at its own pace however long each window takes to score."""

from __future__ import annotations

from collections.abc import Iterator

from mater_tf.media.stream import MediaWindow

# Windows read ahead of the scorer at most (about 32 s of 0.5 s windows; a few MB of frames each).
READ_AHEAD_WINDOWS = 64


def read_ahead(
    windows: Iterator[MediaWindow], stop, max_waiting: int = READ_AHEAD_WINDOWS
) -> Iterator[MediaWindow]:
    """Runs `windows` (a `stream_windows` made with `stop=stop.is_set`) in a thread, so the source is
    read at its own pace however long each window takes to score; yields them in order.

    At most `max_waiting` windows wait to be scored: a source read faster than it is scored (a file
    given to --live without --realtime) is then read only as fast as it is scored, instead of
    holding all its frames in memory. Closing the iterator (or Ctrl-C while waiting) sets `stop`,
    which ends the reading.
    """
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=max_waiting + 1)  # + 1: the end marker or an error
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for window in windows:
                if not put(window):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put(error)
        put(done)

    thread = threading.Thread(target=read, name="mater-tf-reader", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            item.backlog = items.qsize()
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)

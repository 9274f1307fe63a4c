"""TensorBoard scalars: the event file decodes (TFRecord framing + Event protos) to what was written."""

import glob
import struct

from tensorboardX.proto import event_pb2

from asrjax.train import summary


def _read_events(path):
  """TFRecord: [len u64][crc u32][data][crc u32], each data an Event proto (read by hand)."""
  events, data = [], open(path, "rb").read()
  pos = 0
  while pos < len(data):
    (n,) = struct.unpack("<Q", data[pos:pos + 8])
    payload = data[pos + 12:pos + 12 + n]
    pos += 12 + n + 4
    events.append(event_pb2.Event.FromString(payload))
  return events


def test_scalars_land_in_an_event_file(tmp_path):
  writer = summary.SummaryWriter(str(tmp_path / "tb"))
  writer.scalars(5, {"loss": 2.5, "utt_per_s": 10})
  writer.scalars(10, {"loss": 1.25}, prefix="train/")
  writer.close()
  (path,) = glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))
  got = [(e.step, v.tag, v.simple_value) for e in _read_events(path) for v in e.summary.value]
  assert got == [(5, "loss", 2.5), (5, "utt_per_s", 10.0), (10, "train/loss", 1.25)]


def test_disabled_writer_writes_no_files(tmp_path):
  writer = summary.SummaryWriter(str(tmp_path / "tb"), enabled=False)
  writer.scalars(1, {"loss": 1.0})
  writer.close()
  assert not (tmp_path / "tb").exists()

#!/usr/bin/env python3
"""Independent reference encoders and decoders for the codec tests, through ctypes:
G.729 Annex A/B from bcg729 (Debian libbcg729-0), Opus from libopus (libopus0), G.726-32
from spandsp (libspandsp2). None of this is the recorder's code.

  codec_ref.py encode CODEC PCM_IN PACKETS_OUT [options]
  codec_ref.py decode CODEC PACKETS_IN PCM_OUT [options]

PCM is raw signed 16-bit little-endian mono (interleaved stereo with --channels 2).
A packet file is a sequence of [u16 big-endian length][payload], one RTP payload each
(20 ms of audio unless --ptime says otherwise).

CODEC: g729 | opus | g726 (RFC 3551 packing) | g726-aal2 (I.366.2 packing)
options: --vad (G.729 Annex B DTX; Opus DTX), --fec PERCENT (Opus in-band FEC, expected
loss), --channels N, --rate HZ (Opus PCM rate, default 48000), --ptime MS, --bitrate BPS
"""
import argparse
import ctypes
import struct
import sys


def read_packets(path):
    data = open(path, "rb").read()
    out, i = [], 0
    while i + 2 <= len(data):
        (n,) = struct.unpack(">H", data[i:i + 2])
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


def write_packets(path, packets):
    with open(path, "wb") as f:
        for p in packets:
            f.write(struct.pack(">H", len(p)) + p)


def frames(pcm, n):
    samples = len(pcm) // 2
    for off in range(0, samples - n + 1, n):
        yield pcm[off * 2:(off + n) * 2]


# ------------------------------------------------------------------------------- G.729

def g729_encode(pcm, a):
    lib = ctypes.CDLL("libbcg729.so.0")
    lib.initBcg729EncoderChannel.restype = ctypes.c_void_p
    lib.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
    lib.bcg729Encoder.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                  ctypes.POINTER(ctypes.c_uint8)]
    ctx = lib.initBcg729EncoderChannel(1 if a.vad else 0)
    per_packet = a.ptime // 10
    packets, cur, out = [], b"", ctypes.create_string_buffer(10)
    length = ctypes.c_uint8(0)
    for i, frame in enumerate(frames(pcm, 80)):
        lib.bcg729Encoder(ctx, frame, out, ctypes.byref(length))
        cur += out.raw[:length.value]
        if (i + 1) % per_packet == 0:
            # Annex B: an all-untransmitted packet is not sent (an empty entry marks the gap).
            packets.append(cur)
            cur = b""
    return packets


def g729_decode(packets, a):
    lib = ctypes.CDLL("libbcg729.so.0")
    lib.initBcg729DecoderChannel.restype = ctypes.c_void_p
    lib.bcg729Decoder.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint8,
                                  ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8,
                                  ctypes.c_char_p]
    ctx = lib.initBcg729DecoderChannel()
    out, pcm = ctypes.create_string_buffer(160), b""
    for p in packets:
        while len(p) >= 10:
            lib.bcg729Decoder(ctx, p[:10], 10, 0, 0, 0, out)
            pcm += out.raw
            p = p[10:]
        if len(p) == 2:
            lib.bcg729Decoder(ctx, p, 2, 0, 1, 0, out)
            pcm += out.raw
    return pcm


# -------------------------------------------------------------------------------- Opus

OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE = 4002
OPUS_SET_INBAND_FEC = 4012
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_SET_DTX = 4016


def opus_lib():
    lib = ctypes.CDLL("libopus.so.0")
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                ctypes.c_char_p, ctypes.c_int32]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    return lib


def opus_encode(pcm, a):
    lib = opus_lib()
    err = ctypes.c_int(0)
    enc = lib.opus_encoder_create(a.rate, a.channels, OPUS_APPLICATION_VOIP, ctypes.byref(err))
    assert err.value == 0, err.value
    ctl = lib.opus_encoder_ctl
    if a.bitrate:
        ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_SET_BITRATE), ctypes.c_int(a.bitrate))
    if a.fec:
        ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_SET_INBAND_FEC), ctypes.c_int(1))
        ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_SET_PACKET_LOSS_PERC), ctypes.c_int(a.fec))
    if a.vad:
        ctl(ctypes.c_void_p(enc), ctypes.c_int(OPUS_SET_DTX), ctypes.c_int(1))
    n = a.rate * a.ptime // 1000
    out = ctypes.create_string_buffer(1500)
    packets = []
    for frame in frames(pcm, n * a.channels):
        got = lib.opus_encode(enc, frame, n, out, 1500)
        assert got > 0, got
        packets.append(out.raw[:got])
    return packets


def opus_decode(packets, a):
    lib = opus_lib()
    err = ctypes.c_int(0)
    dec = lib.opus_decoder_create(a.rate, a.channels, ctypes.byref(err))
    assert err.value == 0, err.value
    out = ctypes.create_string_buffer(5760 * 2 * a.channels)
    pcm = b""
    for p in packets:
        got = lib.opus_decode(dec, p, len(p), out, 5760, 0)
        assert got > 0, got
        pcm += out.raw[:got * 2 * a.channels]
    return pcm


# ------------------------------------------------------------------------------- G.726

G726_ENCODING_LINEAR = 0
G726_PACKING_LEFT = 1   # first code word in the high bits: ITU-T I.366.2 / AAL2
G726_PACKING_RIGHT = 2  # first code word in the low bits: RFC 3551 §4.5.4


def g726_state(a):
    lib = ctypes.CDLL("libspandsp.so.2")
    lib.g726_init.restype = ctypes.c_void_p
    lib.g726_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.g726_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.g726_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    packing = G726_PACKING_LEFT if a.codec == "g726-aal2" else G726_PACKING_RIGHT
    return lib, lib.g726_init(None, 32000, G726_ENCODING_LINEAR, packing)


def g726_encode(pcm, a):
    lib, s = g726_state(a)
    n = 8 * a.ptime
    out = ctypes.create_string_buffer(n)
    packets = []
    for frame in frames(pcm, n):
        got = lib.g726_encode(s, out, frame, n)
        packets.append(out.raw[:got])
    return packets


def g726_decode(packets, a):
    lib, s = g726_state(a)
    pcm = b""
    for p in packets:
        out = ctypes.create_string_buffer(len(p) * 4)
        got = lib.g726_decode(s, out, p, len(p))
        pcm += out.raw[:got * 2]
    return pcm


CODECS = {
    "g729": (g729_encode, g729_decode),
    "opus": (opus_encode, opus_decode),
    "g726": (g726_encode, g726_decode),
    "g726-aal2": (g726_encode, g726_decode),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["encode", "decode"])
    p.add_argument("codec", choices=sorted(CODECS))
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--vad", action="store_true")
    p.add_argument("--fec", type=int, default=0)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--ptime", type=int, default=20)
    p.add_argument("--bitrate", type=int, default=0)
    a = p.parse_args()
    enc, dec = CODECS[a.codec]
    if a.op == "encode":
        write_packets(a.dst, enc(open(a.src, "rb").read(), a))
    else:
        open(a.dst, "wb").write(dec(read_packets(a.src), a))


if __name__ == "__main__":
    sys.exit(main())

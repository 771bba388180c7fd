#!/usr/bin/env python3
"""The peer of the twin's year of street lighting: the same lamps (rated W, photocell
threshold, burnt out from the start, the spans a fault it develops leaves it dark; as `cargo
bench --bench scenario` writes them with TVILLING_BENCH_LAMPS),
the same calendar (full level, 50 % from 00:00 to 05:00 local time), the same sun (the NOAA
formulas the twin uses, written again here with numpy, one minute at a time as a photocell
reads it), a lamp drawing 0.5 W standby while off. Every minute of the span at once, with
the lamps sorted by threshold: a minute's lit lamps are those whose threshold is above the
sun. Prints `lighting_kwh=<kWh> seconds=<s>`.
Usage: scripts/lighting-peer.py LAMPS.csv FROM_UNIX_MS TO_UNIX_MS"""
import csv
import sys
import time

import numpy as np

LAT, LON = 59.3293, 18.0686
STANDBY_W = 0.5


def elevation(unix_s):
    """Sun elevation, degrees, at each of `unix_s` (UTC seconds)."""
    jd = unix_s / 86_400.0 + 2_440_587.5
    t = (jd - 2_451_545.0) / 36_525.0
    l0 = np.mod(280.46646 + t * (36_000.76983 + t * 0.0003032), 360.0)
    m = 357.52911 + t * (35_999.05029 - 0.0001537 * t)
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    mr = np.radians(m)
    c = (np.sin(mr) * (1.914602 - t * (0.004817 + 0.000014 * t))
         + np.sin(2 * mr) * (0.019993 - 0.000101 * t) + np.sin(3 * mr) * 0.000289)
    omega = 125.04 - 1934.136 * t
    app_long = l0 + c - 0.00569 - 0.00478 * np.sin(np.radians(omega))
    eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    eps = eps0 + 0.00256 * np.cos(np.radians(omega))
    decl = np.arcsin(np.sin(np.radians(eps)) * np.sin(np.radians(app_long)))
    y = np.tan(np.radians(eps) / 2.0) ** 2
    l0r = np.radians(l0)
    eq_time = 4.0 * np.degrees(
        y * np.sin(2 * l0r) - 2 * e * np.sin(mr) + 4 * e * y * np.sin(mr) * np.cos(2 * l0r)
        - 0.5 * y * y * np.sin(4 * l0r) - 1.25 * e * e * np.sin(2 * mr))
    minutes_utc = np.mod(unix_s, 86_400) / 60.0
    true_solar = np.mod(minutes_utc + eq_time + 4.0 * LON, 1440.0)
    hour_angle = np.where(true_solar / 4.0 < 0, true_solar / 4.0 + 180.0, true_solar / 4.0 - 180.0)
    latr = np.radians(LAT)
    cos_zenith = np.clip(np.sin(latr) * np.sin(decl)
                         + np.cos(latr) * np.cos(decl) * np.cos(np.radians(hour_angle)), -1, 1)
    return 90.0 - np.degrees(np.arccos(cos_zenith))


def utc_offset_s(unix_s):
    """Stockholm's offset from UTC: CEST from the last Sunday of March 01:00 UTC to the last
    Sunday of October 01:00 UTC, else CET."""
    out = np.full(unix_s.shape, 3600, dtype=np.int64)
    years = np.unique(unix_s.astype("datetime64[s]").astype("datetime64[Y]").astype(int)) + 1970
    for year in years:
        def last_sunday(month):
            d = np.datetime64(f"{year}-{month:02d}-31", "D").astype(np.int64)
            return d - (d + 4) % 7  # days; 1970-01-01 was a Thursday
        start = last_sunday(3) * 86_400 + 3_600
        end = last_sunday(10) * 86_400 + 3_600
        out[(unix_s >= start) & (unix_s < end)] = 7200
    return out


def main():
    lamps_csv, from_ms, to_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lamps = np.loadtxt(lamps_csv, delimiter=",", skiprows=1, ndmin=2, usecols=(0, 1, 2))
    with open(lamps_csv, newline="") as f:
        dark = [row["dark"] for row in csv.DictReader(f)]
    started = time.perf_counter()
    rated, threshold, burnt = lamps[:, 0], lamps[:, 1], lamps[:, 2] > 0.5
    # Lamps that can light, by threshold, highest first: a minute's lit lamps are a prefix.
    order = np.argsort(-threshold[~burnt], kind="stable")
    thr_desc = threshold[~burnt][order]
    thr_asc = thr_desc[::-1]
    level_w = {lvl: np.concatenate(([0.0], np.cumsum(np.round(rated[~burnt][order] * lvl / 100, 1))))
               for lvl in (50.0, 100.0)}
    minutes = np.arange(from_ms // 60_000, (to_ms + 59_999) // 60_000, dtype=np.int64)
    unix_s = minutes * 60
    sun = elevation(unix_s.astype(np.float64))
    lit = len(thr_asc) - np.searchsorted(thr_asc, sun, side="right")
    local_minute = np.mod(unix_s + utc_offset_s(unix_s), 86_400) // 60
    on_w = np.where(local_minute < 300, level_w[50.0][lit], level_w[100.0][lit])
    watts = on_w + STANDBY_W * (len(rated) - lit)
    # A lamp a fault leaves dark (on whole minutes) draws standby instead of its level.
    for k, spans in enumerate(dark):
        for span in filter(None, spans.split(";")):
            a, b = (int(x) // 60_000 - minutes[0] for x in span.split("-"))
            dim = local_minute[a:b] < 300
            level = np.where(dim, np.round(rated[k] * 50.0 / 100, 1), np.round(rated[k] * 100.0 / 100, 1))
            watts[a:b] -= np.where(sun[a:b] < threshold[k], level - STANDBY_W, 0.0)
    kwh = watts.sum() / 60.0 / 1000.0
    print(f"lighting_kwh={kwh:.1f} seconds={time.perf_counter() - started:.3f}")


main()

//! A block: one segment (hour) of a few neighbouring devices' series in one stored value, each
//! series with the state it carried in from the hour before and its points in the hour.
//!
//! A series' first point in an hour is coded after the point it carried in (its time, its
//! interval, its value and source: a heartbeat that goes on across the hour costs its three
//! bits, not a fresh time and value), and the carried states of a block's series, taken
//! together, are the keyframe of those devices at the hour's start: the state at any moment
//! is one hour's blocks, each read on its own, and one device's year is one block an hour.
//!
//! Layout, one bit stream: a format byte, the count of entries, then per series in series
//! order (device, then quantity), its place (the same device as the entry before, or how many
//! devices on, and the quantity), whether it carries a state in, then: when it was last
//! reported (the difference from the entry before's: a device's quantities are mostly
//! reported together), since when its value has held (a whole number of intervals before
//! that, as a steady reporter's is, or the difference), its interval and its value, each coded
//! after the last of the same quantity in the block (neighbouring lamps share both), and its
//! source when it changes; then its count of points and, when it has any, their length in
//! bits and the points. Small counts are Elias gamma codes.

use super::chunk::{self, BitReader, BitWriter, ChunkWriter, Last, Point, ValueState};
use super::store::Held;

/// A series key: device number above, quantity in the low byte.
pub type Series = i64;

/// Devices whose series share a block: the block of a device is its number over this.
pub const DEVICES_PER_BLOCK_BITS: u32 = 4;

/// The block a series is kept in.
pub fn block_of(series: Series) -> i64 {
    series >> (8 + DEVICES_PER_BLOCK_BITS)
}

/// The first series of a block and the first of the next.
pub fn block_series(block: i64) -> (Series, Series) {
    (
        block << (8 + DEVICES_PER_BLOCK_BITS),
        (block + 1) << (8 + DEVICES_PER_BLOCK_BITS),
    )
}

const FORMAT: u64 = 3;

/// Series with this many points in a block or more have their points' length written (a
/// reader looking for one device passes them over); fewer are read through to pass them.
const LENGTH_FROM: u32 = 5;

/// A series' state as it stood when its hour began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Carry {
    pub held: Held,
    /// The time between its last two points (a heartbeat's interval): the next one is coded
    /// after it.
    pub interval: i64,
}

impl Carry {
    /// The coder's state the series' first point in the hour is coded after.
    pub fn last(&self) -> Last {
        Last::after(
            self.held.last_ms,
            self.interval,
            self.held.value,
            self.held.source,
        )
    }
}

/// Why a stored block cannot be read (what came before the damage was read).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("damaged: it ends after {read} of its {n} series")]
pub struct Damaged {
    pub read: u32,
    pub n: u32,
}

/// The difference coder of the carried states, the same on both sides.
#[derive(Debug, Clone)]
struct Before {
    last: i64,
    source: u16,
    /// Per quantity: the last interval, the value coder and the last since.
    quantities: Vec<(u8, i64, ValueState, i64)>,
}

impl Before {
    fn new(base_ms: i64) -> Before {
        Before {
            last: base_ms,
            source: 0,
            quantities: Vec::new(),
        }
    }

    fn quantity(&mut self, q: u8) -> &mut (u8, i64, ValueState, i64) {
        let i = match self.quantities.iter().position(|e| e.0 == q) {
            Some(i) => i,
            None => {
                self.quantities
                    .push((q, 0, ValueState::default(), i64::MIN));
                self.quantities.len() - 1
            }
        };
        &mut self.quantities[i]
    }
}

/// A count or other small non-negative number as an Elias gamma code (x + 1 in binary after
/// as many zeros as it has bits less one: 0 is one bit, 3 five).
pub(crate) fn put_count(w: &mut BitWriter, x: u64) {
    let v = x.saturating_add(1);
    let bits = 64 - v.leading_zeros();
    w.put(0, bits - 1);
    w.put(v, bits);
}

pub(crate) fn get_count(r: &mut BitReader) -> Option<u64> {
    let mut zeros = 0;
    while r.bit()? == 0 {
        zeros += 1;
        if zeros > 63 {
            return None;
        }
    }
    let rest = if zeros == 0 { 0 } else { r.get(zeros)? };
    Some(((1u64 << zeros) | rest) - 1)
}

/// A block's bytes: its series (any order; each once), each with the state it carried in and
/// its chunk of points (coded after that state) for the hour from `base_ms`. Series with
/// neither are left out.
pub fn encode(base_ms: i64, entries: &mut [(Series, Option<Carry>, &ChunkWriter)]) -> Vec<u8> {
    entries.sort_unstable_by_key(|e| e.0);
    let count = entries
        .iter()
        .filter(|e| e.1.is_some() || e.2.n > 0)
        .count();
    let mut w = BitWriter::default();
    w.put(FORMAT, 8);
    put_count(&mut w, count as u64);
    let (mut device, mut quantity) = (-1i64, 0i64);
    let mut before = Before::new(base_ms);
    for (series, carry, points) in entries.iter() {
        if carry.is_none() && points.n == 0 {
            continue;
        }
        let (d, q) = (series >> 8, series & 0xff);
        if d == device {
            w.put(0, 1);
            put_count(&mut w, (q - quantity - 1) as u64);
        } else {
            w.put(1, 1);
            put_count(&mut w, (d - device - 1) as u64);
            put_count(&mut w, q as u64);
        }
        (device, quantity) = (d, q);
        match carry {
            None => w.put(0, 1),
            Some(c) => {
                w.put(1, 1);
                let h = &c.held;
                chunk::put_signed(&mut w, h.last_ms.wrapping_sub(before.last));
                before.last = h.last_ms;
                let held_for = h.last_ms.wrapping_sub(h.since_ms);
                let pq = before.quantity(q as u8);
                match whole_intervals(held_for, c.interval) {
                    Some(m) => {
                        w.put(1, 1);
                        put_count(&mut w, m);
                    }
                    None if h.since_ms == pq.3 => w.put(0b01, 2),
                    None => {
                        w.put(0b00, 2);
                        chunk::put_signed(&mut w, held_for);
                    }
                }
                pq.3 = h.since_ms;
                chunk::put_signed(&mut w, c.interval.wrapping_sub(pq.1));
                pq.1 = c.interval;
                chunk::put_value(&mut w, &mut pq.2, h.value.to_bits());
                chunk::put_source(&mut w, &mut before.source, h.source);
            }
        }
        put_count(&mut w, u64::from(points.n));
        if points.n >= LENGTH_FROM {
            put_count(&mut w, points.bits().bit_len() as u64);
        }
        w.append(points.bits());
    }
    w.bytes().to_vec()
}

/// How many whole intervals a value has held for, when it is that (a steady reporter's value
/// held since a report), and small.
fn whole_intervals(held_for: i64, interval: i64) -> Option<u64> {
    if interval <= 0 || held_for < 0 || held_for % interval != 0 {
        return None;
    }
    let m = held_for / interval;
    (m < 1 << 20).then_some(m as u64)
}

/// One series' place in a block as read: its state carried in and its count of points (read
/// them with [`BlockReader::points`], or go on to the next series).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    pub series: Series,
    pub carry: Option<Carry>,
    pub n: u32,
}

/// Reads a block's series one after another.
pub struct BlockReader<'a> {
    r: BitReader<'a>,
    n: u32,
    read: u32,
    device: i64,
    quantity: u64,
    before: Before,
    /// The points of the series last read: where they start, their bits, the state they are
    /// coded after.
    pending: Option<(usize, Option<usize>, Last)>,
    pending_n: u32,
    base_ms: i64,
}

impl<'a> BlockReader<'a> {
    pub fn new(base_ms: i64, bytes: &'a [u8]) -> Result<BlockReader<'a>, Damaged> {
        let mut r = BitReader::new(bytes);
        let n = (|| {
            if r.get(8)? != FORMAT {
                return None;
            }
            u32::try_from(get_count(&mut r)?).ok()
        })()
        .ok_or(Damaged { read: 0, n: 0 })?;
        Ok(BlockReader {
            r,
            n,
            read: 0,
            device: -1,
            quantity: 0,
            before: Before::new(base_ms),
            pending: None,
            pending_n: 0,
            base_ms,
        })
    }

    /// The bits read so far.
    pub fn position(&self) -> usize {
        self.r.position()
    }

    /// The series in the block.
    pub fn len(&self) -> u32 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn damaged(&self) -> Damaged {
        Damaged {
            read: self.read,
            n: self.n,
        }
    }

    /// The next series (what is left of the one before is passed over); none after the last.
    pub fn next_head(&mut self) -> Result<Option<Head>, Damaged> {
        if let Some((start, bits, last)) = self.pending.take() {
            match bits {
                Some(bits) => {
                    // From where the points start, whatever was read of them.
                    let back = self.r.position();
                    if back > start + bits {
                        return Err(self.damaged());
                    }
                    self.r
                        .skip(start + bits - back)
                        .ok_or_else(|| self.damaged())?;
                }
                None => {
                    // A few points without their length: read through.
                    let n = self.pending_n;
                    chunk::decode_from(&mut self.r, last, n, |_| {}).map_err(|_| self.damaged())?;
                }
            }
        }
        if self.read == self.n {
            return Ok(None);
        }
        let head = self.head().ok_or_else(|| self.damaged())?;
        self.read += 1;
        Ok(Some(head))
    }

    fn head(&mut self) -> Option<Head> {
        let r = &mut self.r;
        if r.bit()? == 0 {
            if self.device < 0 {
                return None;
            }
            self.quantity = self.quantity.checked_add(get_count(r)?)?.checked_add(1)?;
        } else {
            self.device = self
                .device
                .checked_add(i64::try_from(get_count(r)?).ok()?)?;
            self.device = self.device.checked_add(1)?;
            self.quantity = get_count(r)?;
        }
        if self.device > i64::from(u32::MAX) || self.quantity > 0xff {
            return None;
        }
        let q = self.quantity as u8;
        let b = &mut self.before;
        let carry = if r.bit()? == 1 {
            let last_ms = b.last.wrapping_add(chunk::get_signed(r)?);
            b.last = last_ms;
            // Whole intervals, the same since as the quantity's last, or the difference.
            let held = if r.bit()? == 1 {
                Some(Err(get_count(r)?))
            } else if r.bit()? == 1 {
                None
            } else {
                Some(Ok(chunk::get_signed(r)?))
            };
            let pq = b.quantity(q);
            let interval = pq.1.wrapping_add(chunk::get_signed(r)?);
            pq.1 = interval;
            chunk::get_value(r, &mut pq.2)?;
            let value = f64::from_bits(pq.2.bits);
            if r.bit()? == 1 {
                b.source = r.get(16)? as u16;
            }
            let pq = b.quantity(q);
            let since_ms = match held {
                Some(Ok(d)) => last_ms.wrapping_sub(d),
                Some(Err(m)) => last_ms.wrapping_sub(i64::try_from(m).ok()?.checked_mul(interval)?),
                None => pq.3,
            };
            pq.3 = since_ms;
            Some(Carry {
                held: Held {
                    since_ms,
                    last_ms,
                    value,
                    source: b.source,
                },
                interval,
            })
        } else {
            None
        };
        let n = u32::try_from(get_count(r)?).ok()?;
        if n > 0 {
            let bits = if n >= LENGTH_FROM {
                Some(usize::try_from(get_count(r)?).ok()?)
            } else {
                None
            };
            let start = r.position();
            let last = carry.map_or(Last::cyclic(self.base_ms), |c| c.last());
            self.pending = Some((start, bits, last));
            self.pending_n = n;
        }
        Some(Head {
            series: (self.device << 8) | self.quantity as i64,
            carry,
            n,
        })
    }

    /// The points of the series just read, in the order written.
    pub fn points(&mut self, head: &Head, each: impl FnMut(Point)) -> Result<(), chunk::Damaged> {
        let Some((start, bits, last)) = self.pending.take() else {
            return if head.n == 0 {
                Ok(())
            } else {
                Err(chunk::Damaged { read: 0, n: head.n })
            };
        };
        let result = chunk::decode_from(&mut self.r, last, head.n, each);
        // The next series starts where these points' length says, however far they read.
        let at = self.r.position();
        let end = bits.map_or(at, |b| start + b);
        let placed = if at <= end {
            self.r.skip(end - at)
        } else {
            None
        };
        match (result, placed) {
            (Err(e), _) => {
                self.r = BitReader::new(&[]);
                self.read = self.n;
                Err(e)
            }
            (Ok(()), Some(())) if at == end => Ok(()),
            _ => {
                // The points took more or fewer bits than their length says: the rest of
                // the block cannot be trusted.
                self.r = BitReader::new(&[]);
                self.read = self.n;
                Err(chunk::Damaged {
                    read: head.n,
                    n: head.n,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(since: i64, last: i64, value: f64, source: u16) -> Held {
        Held {
            since_ms: since,
            last_ms: last,
            value,
            source,
        }
    }

    /// Series with and without a carried state, with points and without, read back as
    /// written; one device's points can be read and the rest passed over.
    #[test]
    fn a_block_reads_back_each_series_with_its_carried_state_and_points() {
        let base = 7 * 3_600_000;
        let mut x: u64 = 99;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut want: Vec<(Series, Option<Carry>, Vec<Point>)> = Vec::new();
        for d in [16i64, 17, 19, 31] {
            for q in [0i64, 2, 3] {
                let carry = (next() % 3 != 0).then(|| Carry {
                    held: held(
                        base - (next() % 10_000_000) as i64,
                        base - (next() % 60_000) as i64,
                        (next() % 5) as f64 / 10.0,
                        (next() % 3) as u16,
                    ),
                    interval: (next() % 120_000) as i64,
                });
                let mut points = Vec::new();
                let mut t = base;
                for _ in 0..(next() % 6) {
                    t += (next() % 900_000) as i64;
                    points.push(Point {
                        t_ms: t,
                        value: if next() % 4 == 0 {
                            f64::from_bits(next())
                        } else {
                            (next() % 3) as f64
                        },
                        source: (next() % 2) as u16,
                    });
                }
                want.push(((d << 8) | q, carry, points));
            }
        }
        let chunks: Vec<ChunkWriter> = want
            .iter()
            .map(|(_, c, p)| {
                let mut w = ChunkWriter::resume(base, c.map_or(Last::cyclic(base), |c| c.last()));
                for p in p {
                    w.push(*p);
                }
                w
            })
            .collect();
        let mut entries: Vec<(Series, Option<Carry>, &ChunkWriter)> = want
            .iter()
            .zip(&chunks)
            .map(|((s, c, _), w)| (*s, *c, w))
            .collect();
        let bytes = encode(base, &mut entries);
        let kept: Vec<_> = want
            .iter()
            .filter(|(_, c, p)| c.is_some() || !p.is_empty())
            .collect();
        let mut r = BlockReader::new(base, &bytes).expect("block");
        assert_eq!(r.len() as usize, kept.len());
        let mut got = Vec::new();
        while let Some(h) = r.next_head().expect("head") {
            let mut points = Vec::new();
            r.points(&h, |p| points.push(p)).expect("points");
            assert_eq!(points.len() as u32, h.n);
            got.push((h.series, h.carry, points));
        }
        got.sort_by_key(|g| g.0);
        let mut kept: Vec<_> = kept.into_iter().cloned().collect();
        kept.sort_by_key(|g| g.0);
        assert_eq!(got.len(), kept.len());
        for (g, k) in got.iter().zip(&kept) {
            assert_eq!(g.0, k.0);
            assert_eq!(g.1, k.1);
            assert_eq!(g.2.len(), k.2.len());
            for (a, b) in g.2.iter().zip(&k.2) {
                assert_eq!(
                    (a.t_ms, a.value.to_bits(), a.source),
                    (b.t_ms, b.value.to_bits(), b.source)
                );
            }
        }
        // Only device 19's points read, the rest passed over: the same points.
        let mut r = BlockReader::new(base, &bytes).expect("block");
        let mut only = Vec::new();
        while let Some(h) = r.next_head().expect("head") {
            if h.series >> 8 == 19 {
                r.points(&h, |p| only.push((h.series, p.t_ms))).expect("p");
            }
        }
        let mut want19: Vec<(Series, i64)> = kept
            .iter()
            .filter(|k| k.0 >> 8 == 19)
            .flat_map(|k| k.2.iter().map(move |p| (k.0, p.t_ms)))
            .collect();
        only.sort();
        want19.sort();
        assert_eq!(only, want19);
    }

    /// A heartbeat that goes on across the hour costs a bit a point there too, and a
    /// lamp's carried state a few bytes.
    #[test]
    fn a_heartbeat_carried_across_the_hour_costs_a_bit_a_point() {
        let base = 3_600_000;
        // Half switched at one moment, half a whole number of heartbeats before the last.
        let carries: Vec<Carry> = (0..16)
            .map(|d| Carry {
                held: if d < 8 {
                    held(base - 5_000_000, base - 1_000 * d, 1.0, 2)
                } else {
                    held(base - 1_000 * d - 2 * 1_200_000, base - 1_000 * d, 1.0, 2)
                },
                interval: 1_200_000,
            })
            .collect();
        let chunks: Vec<ChunkWriter> = carries
            .iter()
            .map(|c| {
                let mut w = ChunkWriter::resume(base, c.last());
                for i in 1..=3 {
                    w.push(Point {
                        t_ms: c.held.last_ms + i * 1_200_000,
                        value: 1.0,
                        source: 2,
                    });
                }
                w
            })
            .collect();
        let mut entries: Vec<(Series, Option<Carry>, &ChunkWriter)> = chunks
            .iter()
            .zip(&carries)
            .enumerate()
            .map(|(d, (w, c))| ((d as i64) << 8, Some(*c), w))
            .collect();
        for (_, _, w) in &entries {
            assert_eq!(w.bits().bit_len(), 3);
        }
        let bytes = encode(base, &mut entries);
        // Per lamp: its place, the carried state (its last report a second from its
        // neighbour's: 19 bits of it) and 3 points of a bit: under 6 bytes, where a chunk of
        // its own coded from the hour's start took 20.
        assert!(bytes.len() < 16 * 6, "{} bytes", bytes.len());
        let mut r = BlockReader::new(base, &bytes).expect("block");
        let mut i = 0;
        while let Some(h) = r.next_head().expect("head") {
            assert_eq!(h.carry, Some(carries[i]));
            i += 1;
        }
        assert_eq!(i, 16);
    }

    #[test]
    fn a_cut_or_garbled_block_is_damaged_never_misread_or_a_panic() {
        let base = 0;
        let mut w = ChunkWriter::resume(base, Last::cyclic(base));
        for i in 0..50 {
            w.push(Point {
                t_ms: i * 1_000,
                value: f64::from(i as i32).cos(),
                source: 1,
            });
        }
        let carry = Some(Carry {
            held: held(-10, -5, 3.0, 1),
            interval: 5,
        });
        let empty = ChunkWriter::resume(base, Last::cyclic(base));
        let mut entries = vec![
            (1i64 << 8, None, &w),
            (2 << 8, carry, &empty),
            (3 << 8, None, &w),
        ];
        let bytes = encode(base, &mut entries);
        let read_all = |bytes: &[u8]| -> Result<usize, String> {
            let mut r = BlockReader::new(base, bytes).map_err(|e| e.to_string())?;
            let mut points = 0;
            while let Some(h) = r.next_head().map_err(|e| e.to_string())? {
                r.points(&h, |_| points += 1).map_err(|e| e.to_string())?;
            }
            Ok(points)
        };
        assert_eq!(read_all(&bytes), Ok(100));
        for cut in [0, 1, 2, bytes.len() / 2, bytes.len() - 1] {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for seed in 0..300u32 {
            let mut junk = bytes.clone();
            let i = (seed as usize * 7) % junk.len();
            junk[i] ^= 1 << (seed % 8);
            let _ = read_all(&junk);
        }
    }
}

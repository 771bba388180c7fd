//! A series' values as a compressed column chunk: one bit stream of (time, value, source)
//! points, appended to one point at a time and read back in the order written.
//!
//! - Times (milliseconds) are delta-of-delta coded (Gorilla, Pelkonen et al., VLDB 2015): a
//!   device that reports at a steady interval costs one bit a time.
//! - Values: a repeat costs one bit. A value that is an exact decimal of at most three places,
//!   after one that is too (lamp states, signal aspects, watts, tenths of a degree), is the
//!   difference of the two in thousandths, its trailing decimal zeros counted apart (a step
//!   of a tenth takes 14 bits); any other is the XOR of its bits with the previous
//!   value's, the meaningful bits only (Gorilla's value coding).
//! - Sources: one bit a point while the source stays the same.
//!
//! A reporting lamp's heartbeat (same interval, same value, same source) costs three bits here,
//! one in a block (see [`Last`]).

/// Signed integers by size: `0` for zero, then prefixes for 8, 16, 32 and 64 bits.
pub(crate) fn put_signed(w: &mut BitWriter, x: i64) {
    if x == 0 {
        w.put(0, 1);
    } else if (-128..128).contains(&x) {
        w.put(0b10, 2);
        w.put(x as u64 & 0xff, 8);
    } else if (-32_768..32_768).contains(&x) {
        w.put(0b110, 3);
        w.put(x as u64 & 0xffff, 16);
    } else if (-(1 << 31)..(1 << 31)).contains(&x) {
        w.put(0b1110, 4);
        w.put(x as u64 & 0xffff_ffff, 32);
    } else {
        w.put(0b1111, 4);
        w.put(x as u64, 64);
    }
}

pub(crate) fn get_signed(r: &mut BitReader) -> Option<i64> {
    let width = if r.bit()? == 0 {
        return Some(0);
    } else if r.bit()? == 0 {
        8
    } else if r.bit()? == 0 {
        16
    } else if r.bit()? == 0 {
        32
    } else {
        64
    };
    let raw = r.get(width)?;
    Some(if width == 64 {
        raw as i64
    } else {
        // Sign-extend.
        let shift = 64 - width;
        ((raw << shift) as i64) >> shift
    })
}

/// Bits appended to bytes, most significant first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0: it is full or there is none).
    used: u8,
}

impl BitWriter {
    /// Appends the low `n` bits of `v` (n <= 64).
    pub fn put(&mut self, v: u64, n: u32) {
        let mut n = n;
        while n > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - u32::from(self.used);
            let take = free.min(n);
            let bits = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bits << (free - take);
            self.used = ((u32::from(self.used) + take) % 8) as u8;
            n -= take;
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bits written.
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 - (8 - usize::from(self.used)) % 8
    }

    /// Appends the bits another writer wrote.
    pub fn append(&mut self, other: &BitWriter) {
        let bits = other.bit_len();
        if self.used == 0 {
            // Byte-aligned: the bytes as they are.
            self.bytes.extend_from_slice(&other.bytes);
            self.used = other.used;
            return;
        }
        let whole = bits / 8;
        for b in &other.bytes[..whole] {
            self.put(u64::from(*b), 8);
        }
        let rest = (bits % 8) as u32;
        if rest > 0 {
            self.put(u64::from(other.bytes[whole] >> (8 - rest)), rest);
        }
    }

    /// Bytes held (the allocation included).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Reads what a [`BitWriter`] wrote.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, at: 0 }
    }

    /// The bits read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Moves on `n` bits; none when that passes the end.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        let to = self.at.checked_add(n)?;
        if to > self.bytes.len() * 8 {
            return None;
        }
        self.at = to;
        Some(())
    }

    /// The next bit; none past the end (most of a chunk's fields begin with one, and most
    /// of them are that one bit).
    #[inline]
    pub fn bit(&mut self) -> Option<u64> {
        let byte = *self.bytes.get(self.at / 8)?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u64::from(b))
    }

    /// The next `n` bits (n <= 64); none past the end.
    pub fn get(&mut self, n: u32) -> Option<u64> {
        let n = n as usize;
        if self.at + n > self.bytes.len() * 8 {
            return None;
        }
        let (byte, off) = (self.at / 8, self.at % 8);
        // The common case: the bits lie in the 8 bytes from the current one.
        if n > 0 && n + off <= 64 && byte + 8 <= self.bytes.len() {
            let mut window = [0u8; 8];
            window.copy_from_slice(&self.bytes[byte..byte + 8]);
            let w = u64::from_be_bytes(window);
            self.at += n;
            return Some((w << off) >> (64 - n));
        }
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.bytes[self.at / 8];
            let off = self.at % 8;
            let take = (8 - off).min(left);
            let bits = (byte >> (8 - off - take)) & ((1u16 << take) - 1) as u8;
            v = if take == 64 { 0 } else { v << take } | u64::from(bits);
            self.at += take;
            left -= take;
        }
        Some(v)
    }
}

/// A source after the one before: one bit when it is the same, else the bit and 16.
pub(crate) fn put_source(w: &mut BitWriter, before: &mut u16, source: u16) {
    if source == *before {
        w.put(0, 1);
    } else {
        w.put(1, 1);
        w.put(u64::from(source), 16);
        *before = source;
    }
}

/// The value in thousandths when it is exactly a decimal of at most three places.
fn milli(v: f64) -> Option<i64> {
    let m = (v * 1000.0).round();
    if !(m.abs() < 9.0e15) {
        return None;
    }
    let m = m as i64;
    ((m as f64 / 1000.0).to_bits() == v.to_bits()).then_some(m)
}

/// Codes `bits` after the value `l` holds (a repeat, thousandths, or XOR), and keeps it.
pub(crate) fn put_value(w: &mut BitWriter, l: &mut ValueState, bits: u64) {
    if bits == l.bits {
        w.put(0, 1);
    } else if let (Some(a), Some(b)) = (milli(f64::from_bits(l.bits)), milli(f64::from_bits(bits)))
    {
        w.put(0b10, 2);
        // The difference without its trailing decimal zeros: a step of a tenth is 1, not 100.
        let mut d = b.wrapping_sub(a);
        let mut zeros = 0;
        while zeros < 3 && d % 10 == 0 {
            d /= 10;
            zeros += 1;
        }
        w.put(zeros, 2);
        put_signed(w, d);
    } else {
        w.put(0b11, 2);
        let x = bits ^ l.bits;
        let leading = x.leading_zeros().min(63);
        let trailing = x.trailing_zeros();
        if l.meaningful > 0 && leading >= l.leading && trailing >= 64 - l.leading - l.meaningful {
            w.put(0, 1);
            w.put(x >> (64 - l.leading - l.meaningful), l.meaningful);
        } else {
            let meaningful = 64 - leading - trailing;
            w.put(1, 1);
            w.put(u64::from(leading), 6);
            w.put(u64::from(meaningful - 1), 6);
            w.put(x >> trailing, meaningful);
            l.leading = leading;
            l.meaningful = meaningful;
        }
    }
    l.bits = bits;
}

/// Reads what [`put_value`] wrote; the value is then in `l.bits`.
pub(crate) fn get_value(r: &mut BitReader, l: &mut ValueState) -> Option<()> {
    if r.bit()? == 0 {
        return Some(());
    }
    if r.bit()? == 0 {
        let zeros = r.get(2)? as u32;
        let d = get_signed(r)?.wrapping_mul(10i64.pow(zeros));
        let a = milli(f64::from_bits(l.bits))?;
        l.bits = (a.wrapping_add(d) as f64 / 1000.0).to_bits();
        return Some(());
    }
    if r.bit()? == 1 {
        l.leading = r.get(6)? as u32;
        l.meaningful = r.get(6)? as u32 + 1;
        if l.leading + l.meaningful > 64 {
            return None;
        }
    } else if l.meaningful == 0 {
        return None;
    }
    l.bits ^= r.get(l.meaningful)? << (64 - l.leading - l.meaningful);
    Some(())
}

/// The value coder's state, the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValueState {
    pub bits: u64,
    /// The XOR window (leading zeros, meaningful bits) of the last XOR-coded value.
    leading: u32,
    meaningful: u32,
}

impl Default for ValueState {
    fn default() -> ValueState {
        ValueState {
            bits: 0f64.to_bits(),
            leading: 0,
            meaningful: 0,
        }
    }
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t_ms: i64,
    pub value: f64,
    pub source: u16,
}

/// Points a cycle coder remembers (interval and value): a fixed-time signal head's few
/// aspects, a heartbeat's one.
const RING: usize = 6;

/// The cycle coder's memory: the last points' (interval, value bits) in a ring (the newest at
/// `head`), and the lag at which the coder expects the next one to repeat an earlier one.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cycle {
    ring: [(i64, u64); RING],
    head: u8,
    len: u8,
    lag: u8,
}

impl Cycle {
    fn empty() -> Cycle {
        Cycle {
            ring: [(0, 0); RING],
            head: 0,
            len: 0,
            lag: 0,
        }
    }

    /// The point `lag` back (1: the newest).
    fn back(&self, lag: u8) -> (i64, u64) {
        self.ring[(usize::from(self.head) + usize::from(lag) - 1) % RING]
    }

    /// The point the lag says comes next, if any.
    fn predicted(&self) -> Option<(i64, u64)> {
        (self.lag > 0 && self.lag <= self.len).then(|| self.back(self.lag))
    }

    /// Takes a point in. After a point the lag foretold it stays; after any other, it becomes
    /// the nearest at which the point repeats an earlier one (kept when it repeats none).
    fn take(&mut self, point: (i64, u64), foretold: bool) {
        if !foretold {
            // The nearest earlier point it repeats: the ring scanned as it lies (a match is
            // rare; the scan is what costs).
            let mut nearest = u8::MAX;
            for (i, e) in self.ring.iter().enumerate() {
                if *e == point {
                    let lag = ((i + RING - usize::from(self.head)) % RING) as u8 + 1;
                    if lag <= self.len {
                        nearest = nearest.min(lag);
                    }
                }
            }
            if nearest != u8::MAX {
                self.lag = nearest;
            }
        }
        self.head = if self.head == 0 {
            RING as u8 - 1
        } else {
            self.head - 1
        };
        self.ring[usize::from(self.head)] = point;
        self.len = (self.len + 1).min(RING as u8);
    }
}

/// The coder's running state, the same on both sides: a series' first point in a segment is
/// coded after its base (the segment's start, for a new series) or after the point it carried
/// in from the segment before (its time, its interval, its value and source).
///
/// A block's chunks (schema 3) also code by cycle: each point starts with one bit, set when
/// its interval and value are those of the point as many back as the last repeat's lag (a
/// heartbeat repeats the point before it, a fixed-time signal head the point one cycle of
/// aspects back), so a steady cycle costs one bit a point. Schema 2's chunks do not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Last {
    pub t_ms: i64,
    pub delta: i64,
    value: ValueState,
    pub source: u16,
    cycle: Option<Cycle>,
}

impl Last {
    /// From `base_ms`, without the cycle bit (schema 2's chunks).
    pub fn new(base_ms: i64) -> Last {
        Last {
            t_ms: base_ms,
            delta: 0,
            value: ValueState::default(),
            source: 0,
            cycle: None,
        }
    }

    /// From `base_ms`, coding by cycle (a new series in a block).
    pub fn cyclic(base_ms: i64) -> Last {
        Last {
            cycle: Some(Cycle::empty()),
            ..Last::new(base_ms)
        }
    }

    /// After a point at `t_ms`, `delta` after the one before it, with this value and source,
    /// coding by cycle (a series carried into a block).
    pub fn after(t_ms: i64, delta: i64, value: f64, source: u16) -> Last {
        // The carried point is expected to repeat (a heartbeat goes on).
        let mut cycle = Cycle::empty();
        cycle.take((delta, value.to_bits()), false);
        cycle.lag = 1;
        Last {
            t_ms,
            delta,
            value: ValueState {
                bits: value.to_bits(),
                ..ValueState::default()
            },
            source,
            cycle: Some(cycle),
        }
    }
}

/// A chunk being written: points are appended, the bytes so far can be stored at any time.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkWriter {
    /// Times are coded from this moment (the chunk's segment start).
    pub base_ms: i64,
    pub n: u32,
    pub first_ms: i64,
    pub last_ms: i64,
    w: BitWriter,
    last: Last,
}

impl ChunkWriter {
    pub fn new(base_ms: i64) -> ChunkWriter {
        ChunkWriter::resume(base_ms, Last::new(base_ms))
    }

    /// A chunk whose first point is coded after `last`.
    pub fn resume(base_ms: i64, last: Last) -> ChunkWriter {
        ChunkWriter {
            base_ms,
            n: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
            w: BitWriter::default(),
            last,
        }
    }

    /// The coder's state after the last point.
    pub fn last(&self) -> Last {
        self.last
    }

    /// The bits written.
    pub fn bits(&self) -> &BitWriter {
        &self.w
    }

    pub fn push(&mut self, p: Point) {
        let w = &mut self.w;
        let l = &mut self.last;
        let delta = p.t_ms.wrapping_sub(l.t_ms);
        let bits = p.value.to_bits();
        let repeat = l.cycle.as_ref().map(|c| {
            let hit = c.predicted() == Some((delta, bits)) && p.source == l.source;
            w.put(u64::from(hit), 1);
            hit
        });
        if repeat == Some(true) {
            l.value.bits = bits;
        } else {
            // Time.
            put_signed(w, delta.wrapping_sub(l.delta));
            put_value(w, &mut l.value, bits);
            put_source(w, &mut l.source, p.source);
        }
        l.delta = delta;
        l.t_ms = p.t_ms;
        if let Some(c) = l.cycle.as_mut() {
            c.take((delta, bits), repeat == Some(true));
        }
        self.n += 1;
        self.first_ms = self.first_ms.min(p.t_ms);
        self.last_ms = self.last_ms.max(p.t_ms);
    }

    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Memory this chunk holds.
    pub fn heap_bytes(&self) -> usize {
        self.w.heap_bytes() + std::mem::size_of::<ChunkWriter>()
    }
}

/// Why a stored chunk cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("damaged: it ends after {read} of its {n} values")]
pub struct Damaged {
    pub read: u32,
    pub n: u32,
}

/// Reads a chunk's `n` points (in the order written).
pub fn decode(base_ms: i64, n: u32, bytes: &[u8]) -> Result<Vec<Point>, Damaged> {
    let mut out = Vec::with_capacity(n as usize);
    decode_each(base_ms, n, bytes, |p| out.push(p))?;
    Ok(out)
}

/// Hands each of a chunk's `n` points to `each` (in the order written).
pub fn decode_each(
    base_ms: i64,
    n: u32,
    bytes: &[u8],
    each: impl FnMut(Point),
) -> Result<(), Damaged> {
    decode_from(&mut BitReader::new(bytes), Last::new(base_ms), n, each)
}

/// Reads `n` points from `r`, the first coded after `l`.
pub fn decode_from(
    r: &mut BitReader,
    mut l: Last,
    n: u32,
    mut each: impl FnMut(Point),
) -> Result<(), Damaged> {
    for read in 0..n {
        let damaged = Damaged { read, n };
        let point = (|| {
            let repeat = match l.cycle.as_ref() {
                Some(c) if r.bit()? == 1 => Some(c.predicted()?),
                _ => None,
            };
            match repeat {
                Some((delta, bits)) => {
                    l.delta = delta;
                    l.t_ms = l.t_ms.wrapping_add(delta);
                    l.value.bits = bits;
                }
                None => {
                    let dod = get_signed(r)?;
                    l.delta = l.delta.wrapping_add(dod);
                    l.t_ms = l.t_ms.wrapping_add(l.delta);
                    get_value(r, &mut l.value)?;
                    if r.bit()? == 1 {
                        l.source = r.get(16)? as u16;
                    }
                }
            }
            let (delta, bits) = (l.delta, l.value.bits);
            if let Some(c) = l.cycle.as_mut() {
                c.take((delta, bits), repeat.is_some());
            }
            Some(Point {
                t_ms: l.t_ms,
                value: f64::from_bits(l.value.bits),
                source: l.source,
            })
        })()
        .ok_or(damaged)?;
        each(point);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(points: &[Point]) -> usize {
        let mut w = ChunkWriter::new(1_000_000);
        for p in points {
            w.push(*p);
        }
        let back = decode(1_000_000, w.n, w.bytes()).expect("decodes");
        assert_eq!(back.len(), points.len());
        for (a, b) in back.iter().zip(points) {
            assert_eq!(a.t_ms, b.t_ms);
            assert_eq!(
                a.value.to_bits(),
                b.value.to_bits(),
                "{} {}",
                a.value,
                b.value
            );
            assert_eq!(a.source, b.source);
        }
        w.bytes().len()
    }

    /// Points through a cycle coder (as a block's chunks are) and back; the bytes written.
    fn cyclic_round_trip(first: Last, points: &[Point]) -> usize {
        let mut w = ChunkWriter::resume(1_000_000, first);
        for p in points {
            w.push(*p);
        }
        let mut back = Vec::new();
        decode_from(&mut BitReader::new(w.bytes()), first, w.n, |p| back.push(p)).expect("decodes");
        assert_eq!(back.len(), points.len());
        for (a, b) in back.iter().zip(points) {
            assert_eq!(
                (a.t_ms, a.value.to_bits(), a.source),
                (b.t_ms, b.value.to_bits(), b.source)
            );
        }
        w.bytes().len()
    }

    #[test]
    fn a_fixed_time_cycle_costs_a_bit_a_point_once_seen() {
        // Green 40 s, yellow 3 s, red 45 s, red-yellow 2 s, forty times over.
        let phases = [(1.0, 40_000), (2.0, 3_000), (3.0, 45_000), (4.0, 2_000)];
        let mut t = 1_000_000;
        let mut points = Vec::new();
        for _ in 0..40 {
            for (aspect, length) in phases {
                points.push(Point {
                    t_ms: t,
                    value: aspect,
                    source: 1,
                });
                t += length;
            }
        }
        let bytes = cyclic_round_trip(Last::cyclic(1_000_000), &points);
        // The first cycle and a bit (six points coded whole): then a bit a point; under a
        // quarter of what the same points take coded without the cycle bit.
        assert!(bytes <= 64, "{bytes} bytes for 160 aspects");
        let mut plain = ChunkWriter::new(1_000_000);
        for p in &points {
            plain.push(*p);
        }
        assert!(
            bytes * 4 < plain.bytes().len(),
            "{bytes} vs {}",
            plain.bytes().len()
        );
        // A heartbeat carried in: a bit a point from the first.
        let beats: Vec<Point> = (1..=10)
            .map(|i| Point {
                t_ms: 1_000_000 + i * 1_800_000,
                value: 1.0,
                source: 2,
            })
            .collect();
        assert_eq!(
            cyclic_round_trip(Last::after(1_000_000, 1_800_000, 1.0, 2), &beats),
            2,
            "ten bits"
        );
        // A cycle broken now and then (a source change, an odd interval) still reads back.
        let mut broken = points.clone();
        for (i, p) in broken.iter_mut().enumerate() {
            if i % 17 == 0 {
                p.source = 3;
            }
            if i % 23 == 0 {
                p.t_ms += 7;
            }
        }
        broken.sort_by_key(|p| p.t_ms);
        cyclic_round_trip(Last::cyclic(1_000_000), &broken);
    }

    #[test]
    fn every_kind_of_value_comes_back_bit_for_bit() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut points = Vec::new();
        let mut t = 1_000_000;
        for i in 0..5_000 {
            t += match next() % 5 {
                0 => 0,
                1 => 60_000,
                2 => (next() % 100_000) as i64,
                3 => -((next() % 1_000) as i64),
                _ => (next() % (1 << 40)) as i64,
            };
            let value = match next() % 8 {
                0 => f64::from_bits(next()),
                1 => f64::NAN,
                2 => -0.0,
                3 => f64::INFINITY,
                4 => (next() % 2000) as f64 / 10.0 - 100.0,
                5 => 1e300 * ((next() % 3) as f64 - 1.0),
                6 => f64::MIN_POSITIVE / 3.0,
                _ => (i % 3) as f64,
            };
            let source = if next() % 7 == 0 {
                (next() % 65_536) as u16
            } else {
                3
            };
            points.push(Point {
                t_ms: t,
                value,
                source,
            });
        }
        round_trip(&points);
        cyclic_round_trip(Last::cyclic(1_000_000), &points);
        cyclic_round_trip(Last::after(999_000, 1_000, 3.5, 3), &points);
    }

    #[test]
    fn a_steady_heartbeat_costs_three_bits_and_decimals_a_few() {
        let steady: Vec<Point> = (0..1_000)
            .map(|i| Point {
                t_ms: 1_000_000 + i * 60_000,
                value: 1.0,
                source: 2,
            })
            .collect();
        let bytes = round_trip(&steady);
        assert!(bytes <= 1_000 * 3 / 8 + 16, "{bytes} bytes");
        // Tenths that wander by a little: the difference in thousandths, not 50-odd XOR bits.
        let wander: Vec<Point> = (0..1_000)
            .map(|i| Point {
                t_ms: 1_000_000 + i * 60_000,
                value: 20.0 + f64::from(((i * 7) % 13) as i32 - 6) / 10.0,
                source: 2,
            })
            .collect();
        let bytes = round_trip(&wander);
        assert!(bytes <= 2_000 + 16, "{bytes} bytes for 1000 tenths");
    }

    #[test]
    fn a_cut_chunk_is_damaged_not_misread() {
        let mut w = ChunkWriter::new(0);
        for i in 0..100 {
            w.push(Point {
                t_ms: i * 1_000 + (i * i) % 7,
                value: f64::from(i as i32).sin(),
                source: 1,
            });
        }
        let bytes = w.bytes();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let e = decode(0, w.n, &bytes[..cut]).expect_err("cut");
            assert!(e.read < 100, "{e}");
        }
        assert_eq!(decode(0, w.n, bytes).expect("whole").len(), 100);
        // Garbage never panics.
        for seed in 0..200u8 {
            let junk: Vec<u8> = (0..40u8)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(17)))
                .collect();
            let _ = decode(0, 500, &junk);
        }
    }
}

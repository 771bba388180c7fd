//! A Parquet file writer for history exports: flat tables of required columns (timestamps in
//! milliseconds UTC, doubles, UTF-8 strings), uncompressed, written in row groups.
//!
//! What it writes follows the Apache Parquet format (parquet-format's `parquet.thrift`): the
//! magic `PAR1`, then per row group one column chunk per column, then the file metadata in
//! Thrift's compact protocol, its length and `PAR1` again. Numbers are PLAIN encoded; strings
//! are dictionary encoded (a PLAIN dictionary page, then the indices as one bit-packed run of
//! the RLE/bit-packing hybrid), which keeps a device or quantity column to a bit or two a row.

use std::collections::HashMap;
use std::io::{self, Write};

/// One column's values for a row group.
pub enum ColumnData<'a> {
    /// Milliseconds since the Unix epoch, UTC.
    TimestampMs(&'a [i64]),
    Double(&'a [f64]),
    Utf8(&'a [&'a str]),
}

impl ColumnData<'_> {
    fn len(&self) -> usize {
        match self {
            ColumnData::TimestampMs(v) => v.len(),
            ColumnData::Double(v) => v.len(),
            ColumnData::Utf8(v) => v.len(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            ColumnData::TimestampMs(_) => Kind::TimestampMs,
            ColumnData::Double(_) => Kind::Double,
            ColumnData::Utf8(_) => Kind::Utf8,
        }
    }
}

/// A column's type in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    TimestampMs,
    Double,
    Utf8,
}

impl Kind {
    /// The physical type (parquet.thrift `Type`).
    fn physical(self) -> i32 {
        match self {
            Kind::TimestampMs => 2, // INT64
            Kind::Double => 5,      // DOUBLE
            Kind::Utf8 => 6,        // BYTE_ARRAY
        }
    }
}

// Encodings (parquet.thrift `Encoding`).
const PLAIN: i32 = 0;
const RLE: i32 = 3;
const RLE_DICTIONARY: i32 = 8;
// Page types.
const DATA_PAGE: i32 = 0;
const DICTIONARY_PAGE: i32 = 2;

/// Thrift compact protocol, as much of it as the file metadata needs.
#[derive(Default)]
struct Compact {
    buf: Vec<u8>,
    /// The last field id written, per open struct.
    last: Vec<i16>,
}

// Compact protocol type codes.
const T_TRUE: u8 = 1;
const T_FALSE: u8 = 2;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_STRUCT: u8 = 12;

impl Compact {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn header(&mut self, id: i16, kind: u8) {
        let last = self.last.last_mut().expect("inside a struct");
        let delta = id - *last;
        *last = id;
        if (1..=15).contains(&delta) {
            self.buf.push(((delta as u8) << 4) | kind);
        } else {
            self.buf.push(kind);
            self.zigzag(i64::from(id));
        }
    }

    fn begin(&mut self) {
        self.last.push(0);
    }

    fn end(&mut self) {
        self.buf.push(0);
        self.last.pop();
    }

    fn i32(&mut self, id: i16, v: i32) {
        self.header(id, T_I32);
        self.zigzag(i64::from(v));
    }

    fn i64(&mut self, id: i16, v: i64) {
        self.header(id, T_I64);
        self.zigzag(v);
    }

    fn bool(&mut self, id: i16, v: bool) {
        self.header(id, if v { T_TRUE } else { T_FALSE });
    }

    fn binary(&mut self, id: i16, v: &[u8]) {
        self.header(id, T_BINARY);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    fn struct_field(&mut self, id: i16) {
        self.header(id, T_STRUCT);
        self.begin();
    }

    fn list(&mut self, id: i16, element: u8, len: usize) {
        self.header(id, T_LIST);
        if len < 15 {
            self.buf.push(((len as u8) << 4) | element);
        } else {
            self.buf.push(0xF0 | element);
            self.varint(len as u64);
        }
    }

    fn list_i32(&mut self, id: i16, values: &[i32]) {
        self.list(id, T_I32, values.len());
        for v in values {
            self.zigzag(i64::from(*v));
        }
    }

    fn list_binary(&mut self, id: i16, values: &[&str]) {
        self.list(id, T_BINARY, values.len());
        for v in values {
            self.varint(v.len() as u64);
            self.buf.extend_from_slice(v.as_bytes());
        }
    }
}

/// A page header (parquet.thrift `PageHeader`) for a data page or a dictionary page.
fn page_header(kind: i32, size: usize, values: usize, encoding: i32) -> Vec<u8> {
    let mut c = Compact::default();
    c.begin();
    c.i32(1, kind);
    c.i32(2, size as i32);
    c.i32(3, size as i32);
    if kind == DICTIONARY_PAGE {
        c.struct_field(7);
        c.i32(1, values as i32);
        c.i32(2, PLAIN);
        c.end();
    } else {
        c.struct_field(5);
        c.i32(1, values as i32);
        c.i32(2, encoding);
        c.i32(3, RLE);
        c.i32(4, RLE);
        c.end();
    }
    c.end();
    c.buf
}

/// Indices as one bit-packed run of the RLE/bit-packing hybrid, preceded by the bit width (a
/// data page's dictionary indices). The last group of 8 is padded with zeros.
fn bit_packed(indices: &[u32], width: u8) -> Vec<u8> {
    let mut c = Compact::default();
    c.buf.push(width);
    let groups = indices.len().div_ceil(8);
    c.varint(((groups as u64) << 1) | 1);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for i in 0..groups * 8 {
        let v = u64::from(indices.get(i).copied().unwrap_or(0));
        acc |= v << bits;
        bits += u32::from(width);
        while bits >= 8 {
            c.buf.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    c.buf
}

/// Where a written column chunk lies, for the file metadata.
struct ChunkMeta {
    kind: Kind,
    dictionary_offset: Option<u64>,
    data_offset: u64,
    size: u64,
    values: usize,
}

/// Writes a Parquet file: `new`, `write_row_group` any number of times, `finish`.
pub struct ParquetWriter<W: Write> {
    out: W,
    offset: u64,
    names: Vec<String>,
    kinds: Vec<Kind>,
    groups: Vec<(usize, Vec<ChunkMeta>)>,
}

impl<W: Write> ParquetWriter<W> {
    /// Starts a file with these columns (all required).
    pub fn new(mut out: W, columns: &[(&str, Kind)]) -> io::Result<Self> {
        out.write_all(b"PAR1")?;
        Ok(Self {
            out,
            offset: 4,
            names: columns.iter().map(|(n, _)| (*n).to_string()).collect(),
            kinds: columns.iter().map(|(_, k)| *k).collect(),
            groups: Vec::new(),
        })
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes one row group: a column's values each, in the order of `new`, all as long.
    pub fn write_row_group(&mut self, columns: &[ColumnData]) -> io::Result<()> {
        let rows = columns.first().map_or(0, ColumnData::len);
        if columns.len() != self.kinds.len()
            || columns
                .iter()
                .zip(&self.kinds)
                .any(|(c, k)| c.len() != rows || c.kind() != *k)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a row group's columns do not match the schema or differ in length",
            ));
        }
        if rows == 0 {
            return Ok(());
        }
        let mut metas = Vec::with_capacity(columns.len());
        for column in columns {
            let start = self.offset;
            let mut dictionary_offset = None;
            let data = match column {
                ColumnData::TimestampMs(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ColumnData::Double(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ColumnData::Utf8(v) => {
                    let mut index: HashMap<&str, u32> = HashMap::new();
                    let mut dictionary: Vec<&str> = Vec::new();
                    let indices: Vec<u32> = v
                        .iter()
                        .map(|s| {
                            *index.entry(s).or_insert_with(|| {
                                dictionary.push(s);
                                dictionary.len() as u32 - 1
                            })
                        })
                        .collect();
                    let mut plain = Vec::new();
                    for s in &dictionary {
                        plain.extend_from_slice(&(s.len() as u32).to_le_bytes());
                        plain.extend_from_slice(s.as_bytes());
                    }
                    dictionary_offset = Some(self.offset);
                    let header = page_header(DICTIONARY_PAGE, plain.len(), dictionary.len(), PLAIN);
                    self.put(&header)?;
                    self.put(&plain)?;
                    let width = (u32::BITS - (dictionary.len() as u32 - 1).leading_zeros()).max(1);
                    bit_packed(&indices, width as u8)
                }
            };
            let data_offset = self.offset;
            let encoding = if matches!(column, ColumnData::Utf8(_)) {
                RLE_DICTIONARY
            } else {
                PLAIN
            };
            let header = page_header(DATA_PAGE, data.len(), rows, encoding);
            self.put(&header)?;
            self.put(&data)?;
            metas.push(ChunkMeta {
                kind: column.kind(),
                dictionary_offset,
                data_offset,
                size: self.offset - start,
                values: rows,
            });
        }
        self.groups.push((rows, metas));
        Ok(())
    }

    /// Writes the file metadata and the footer; returns the rows written and the writer.
    pub fn finish(mut self) -> io::Result<(u64, W)> {
        let rows: usize = self.groups.iter().map(|(n, _)| n).sum();
        let mut c = Compact::default();
        c.begin();
        c.i32(1, 1); // version
        c.list(2, T_STRUCT, self.names.len() + 1);
        c.begin();
        c.binary(4, b"schema");
        c.i32(5, self.names.len() as i32);
        c.end();
        for (name, kind) in self.names.iter().zip(&self.kinds) {
            c.begin();
            c.i32(1, kind.physical());
            c.i32(3, 0); // REQUIRED
            c.binary(4, name.as_bytes());
            match kind {
                Kind::TimestampMs => {
                    c.i32(6, 9); // TIMESTAMP_MILLIS
                    c.struct_field(10); // LogicalType
                    c.struct_field(8); // TIMESTAMP
                    c.bool(1, true); // isAdjustedToUTC
                    c.struct_field(2); // unit
                    c.struct_field(1); // MILLIS
                    c.end();
                    c.end();
                    c.end();
                    c.end();
                }
                Kind::Utf8 => {
                    c.i32(6, 0); // UTF8
                    c.struct_field(10);
                    c.struct_field(1); // STRING
                    c.end();
                    c.end();
                }
                Kind::Double => {}
            }
            c.end();
        }
        c.i64(3, rows as i64);
        c.list(4, T_STRUCT, self.groups.len());
        for (n, metas) in &self.groups {
            c.begin();
            c.list(1, T_STRUCT, metas.len());
            for (m, name) in metas.iter().zip(&self.names) {
                c.begin();
                c.i64(2, m.dictionary_offset.unwrap_or(m.data_offset) as i64);
                c.struct_field(3);
                c.i32(1, m.kind.physical());
                if m.dictionary_offset.is_some() {
                    c.list_i32(2, &[PLAIN, RLE, RLE_DICTIONARY]);
                } else {
                    c.list_i32(2, &[PLAIN, RLE]);
                }
                c.list_binary(3, &[name.as_str()]);
                c.i32(4, 0); // UNCOMPRESSED
                c.i64(5, m.values as i64);
                c.i64(6, m.size as i64);
                c.i64(7, m.size as i64);
                c.i64(9, m.data_offset as i64);
                if let Some(d) = m.dictionary_offset {
                    c.i64(11, d as i64);
                }
                c.end();
                c.end();
            }
            c.i64(2, metas.iter().map(|m| m.size as i64).sum());
            c.i64(3, *n as i64);
            c.end();
        }
        c.binary(
            6,
            concat!("tvilling version ", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        c.end();
        let footer = c.buf;
        self.put(&footer)?;
        self.put(&(footer.len() as u32).to_le_bytes())?;
        self.put(b"PAR1")?;
        self.out.flush()?;
        Ok((rows as u64, self.out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_protocol_fields_lists_and_long_jumps() {
        let mut c = Compact::default();
        c.begin();
        c.i32(1, -3); // delta 1, I32, zigzag(-3) = 5
        c.i64(17, 300); // delta 16: type byte, then the id as zigzag varint
        c.list_i32(18, &[1; 15]); // 15 elements: the long list header
        c.end();
        assert_eq!(&c.buf[..2], &[0x15, 5]);
        assert_eq!(&c.buf[2..6], &[0x06, 34, 0xd8, 0x04]);
        assert_eq!(&c.buf[6..9], &[0x19, 0xf5, 15]);
        assert_eq!(c.buf.len(), 9 + 15 + 1);
        assert_eq!(*c.buf.last().expect("stop"), 0);
    }

    #[test]
    fn indices_are_bit_packed_least_significant_bit_first() {
        // Values 0..8 at 3 bits: the format's own example packs them as 0x88 0xC6 0xFA.
        let packed = bit_packed(&[0, 1, 2, 3, 4, 5, 6, 7], 3);
        assert_eq!(packed, vec![3, 0x03, 0x88, 0xC6, 0xFA]);
        // Nine values make two groups, the second padded.
        assert_eq!(bit_packed(&[1; 9], 1), vec![1, 0x05, 0xFF, 0x01]);
    }

    #[test]
    fn a_file_starts_and_ends_with_the_magic_and_says_its_footer_length() {
        let mut w = ParquetWriter::new(
            Vec::new(),
            &[("time", Kind::TimestampMs), ("q", Kind::Utf8)],
        )
        .expect("new");
        w.write_row_group(&[
            ColumnData::TimestampMs(&[1, 2]),
            ColumnData::Utf8(&["a", "b"]),
        ])
        .expect("group");
        // A column of the wrong kind or length is refused, and nothing is written for it.
        assert!(
            w.write_row_group(&[ColumnData::Double(&[1.0]), ColumnData::Utf8(&["a"])])
                .is_err()
        );
        let (rows, bytes) = w.finish().expect("finish");
        assert_eq!(rows, 2);
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
        let n = bytes.len();
        let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().expect("4")) as usize;
        assert!(footer > 0 && footer < n - 12);
        // The footer names the writer.
        let meta = &bytes[n - 8 - footer..n - 8];
        assert!(meta.windows(8).any(|w| w == b"tvilling"));
    }
}

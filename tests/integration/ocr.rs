//! Reading the screenshots' text with Tesseract, tolerant of OCR's known confusions and strict
//! about what matters.
//!
//! A test asks whether a picture shows a text ("signalheads168"). OCR of egui's small font on a
//! busy machine misreads a glyph now and then (air as "ait", i as l, 0 as o), so a plain
//! `contains` fails one run in N. [`Reading::has`] instead looks for the text with a few edits
//! allowed, in proportion to its letters:
//! - characters OCR confuses (i, l, 1 and |; o and 0; s and 5; ...) count as the same;
//! - a letter read wrong, missing or extra costs one edit; a text of 8 to 15 letters may have
//!   one, 16 to 23 two, and so on; one under 8 letters must be read exactly (up to confusions);
//! - digits are never edited: a count of 195 is not read as 196, and a number must stand on its
//!   own (no digit right before or after it), so 168 is not found in 1680;
//! - spaces and line breaks are free (OCR splits and joins words unevenly), and marks that OCR
//!   drops or invents (:, ;, quotes) are left out of both sides.
//!
//! Each reading keeps the box of every word, so a test can paint the words it found over and
//! check that the same assertion then fails: a check that cannot fail checks nothing.

use std::path::Path;
use std::process::Command;

/// What Tesseract read on a picture: normalised characters, each with the word it came from.
pub(crate) struct Reading {
    /// Lower case, å/ä folded to a, ö/é to o (OCR reads egui's small ö as é), dropped marks
    /// left out; `' '` between words and lines.
    chars: Vec<char>,
    /// The index in `boxes` of each character's word (`None` for the separators).
    word: Vec<Option<usize>>,
    /// Each word's box in pixels: left, top, width, height.
    pub(crate) boxes: Vec<[usize; 4]>,
}

/// Marks OCR drops and invents at will; left out of texts and readings alike.
fn dropped(c: char) -> bool {
    matches!(
        c,
        ':' | ';' | '\'' | '`' | '"' | '’' | '‘' | '“' | '”' | '«' | '»' | '¢' | '©'
    )
}

/// One character as the matcher sees it (`None`: left out).
fn normal(c: char) -> Option<char> {
    let c = c.to_lowercase().next().unwrap_or(c);
    match c {
        'å' | 'ä' | 'à' | 'á' => Some('a'),
        'ö' | 'é' | 'ó' | 'ò' | 'ø' => Some('o'),
        '—' | '–' | '−' => Some('-'),
        c if dropped(c) => None,
        c if c.is_whitespace() => Some(' '),
        c => Some(c),
    }
}

/// Pairs OCR confuses in egui's font: either may stand for the other at no cost.
fn confusable(a: char, b: char) -> bool {
    const CLASSES: &[&str] = &["il1|!", "o0", "s5", "z2", "b6", "b8", "g9", "q9", ".,"];
    CLASSES.iter().any(|c| c.contains(a) && c.contains(b))
}

/// An edit a match cannot afford.
const NEVER: u32 = 1_000;

impl Reading {
    /// Reads `path` with Tesseract (word boxes from its TSV output).
    pub(crate) fn of(path: &Path) -> Reading {
        Reading::of_layout(path, None)
    }

    /// Reads `path` with Tesseract in one of its page layouts (`--psm`; `None`: its own
    /// choice). Egui's tables sometimes read better as sparse text (`Some(11)`): Tesseract's
    /// own layout analysis can take a table's first column for a block of its own and lose it.
    pub(crate) fn of_layout(path: &Path, psm: Option<u8>) -> Reading {
        let mut cmd = Command::new("tesseract");
        cmd.arg(path).arg("-");
        if let Some(psm) = psm {
            cmd.arg("--psm").arg(psm.to_string());
        }
        let out = cmd
            .arg("tsv")
            .output()
            .expect("tesseract (Debian package tesseract-ocr) must be installed");
        assert!(
            out.status.success(),
            "tesseract failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Reading::from_tsv(&String::from_utf8_lossy(&out.stdout))
    }

    /// Tesseract's TSV: `level page block par line word left top width height conf text`,
    /// one row per word at level 5.
    pub(crate) fn from_tsv(tsv: &str) -> Reading {
        let mut reading = Reading {
            chars: Vec::new(),
            word: Vec::new(),
            boxes: Vec::new(),
        };
        for row in tsv.lines().skip(1) {
            let f: Vec<&str> = row.split('\t').collect();
            if f.len() < 12 || f[0] != "5" || f[11].trim().is_empty() {
                continue;
            }
            let n = |i: usize| f[i].parse::<usize>().unwrap_or(0);
            let index = reading.boxes.len();
            reading.boxes.push([n(6), n(7), n(8), n(9)]);
            reading.push(' ', None);
            for c in f[11].chars().filter_map(normal) {
                reading.push(c, Some(index));
            }
        }
        reading
    }

    /// A reading of plain text (no boxes), for the matcher's own tests.
    #[cfg(test)]
    fn plain(text: &str) -> Reading {
        let mut reading = Reading {
            chars: Vec::new(),
            word: Vec::new(),
            boxes: Vec::new(),
        };
        for c in text.chars().filter_map(normal) {
            reading.push(c, None);
        }
        reading
    }

    fn push(&mut self, c: char, word: Option<usize>) {
        if c == ' ' && self.chars.last().is_none_or(|l| *l == ' ') {
            return;
        }
        self.chars.push(c);
        self.word.push(word);
    }

    /// Whether the text was read, within the edits its length allows.
    pub(crate) fn has(&self, want: &str) -> bool {
        self.find(want, &[]).is_some()
    }

    /// Whether the text was read with no edit at all (OCR's confusions still count as the
    /// same): for texts that must be absent, where a near miss is another word.
    pub(crate) fn has_exact(&self, want: &str) -> bool {
        self.find_within(&needle(want), 0, &[]).is_some()
    }

    /// Which of `wants` were not read.
    pub(crate) fn missing<'a>(&self, wants: &[&'a str]) -> Vec<&'a str> {
        wants.iter().copied().filter(|w| !self.has(w)).collect()
    }

    /// Where the text was read (a range of characters), outside `taken`.
    fn find(&self, want: &str, taken: &[(usize, usize)]) -> Option<(usize, usize)> {
        let needle = needle(want);
        let letters = needle.iter().filter(|c| c.is_alphabetic()).count();
        self.find_within(&needle, (letters / 8) as u32, taken)
    }

    /// Approximate substring search (Sellers' dynamic programme, carrying each cell's start).
    fn find_within(
        &self,
        needle: &[char],
        edits: u32,
        taken: &[(usize, usize)],
    ) -> Option<(usize, usize)> {
        let hay = &self.chars;
        let free = |j: usize| taken.iter().all(|(a, b)| j < *a || j >= *b);
        let digit_at = |j: usize| hay.get(j).is_some_and(char::is_ascii_digit);
        let (first_digit, last_digit) = (
            needle.first().is_some_and(char::is_ascii_digit),
            needle.last().is_some_and(char::is_ascii_digit),
        );
        let cost = |c: char| if c.is_ascii_digit() { NEVER } else { 1 };
        // prev[j]: (edits, start) of the best match of needle[..i] ending before hay[j].
        let mut prev: Vec<(u32, usize)> = (0..=hay.len())
            .map(|j| {
                // A number must not continue one that stands before it.
                let ok = free(j) && !(first_digit && j > 0 && digit_at(j - 1));
                (if ok { 0 } else { NEVER }, j)
            })
            .collect();
        for &n in needle {
            let mut row = vec![(NEVER, 0); hay.len() + 1];
            row[0] = (prev[0].0.saturating_add(cost(n)), prev[0].1);
            for j in 1..=hay.len() {
                let h = hay[j - 1];
                let sub = if h == n || confusable(h, n) {
                    0
                } else if h.is_ascii_digit() || n.is_ascii_digit() || h == ' ' {
                    NEVER
                } else {
                    1
                };
                let skip_hay = if h == ' ' { 0 } else { cost(h) };
                let diag = (prev[j - 1].0.saturating_add(sub), prev[j - 1].1);
                let up = (prev[j].0.saturating_add(cost(n)), prev[j].1);
                let left = (row[j - 1].0.saturating_add(skip_hay), row[j - 1].1);
                let mut best = diag.min(up).min(left);
                if !free(j - 1) {
                    best.0 = NEVER;
                }
                row[j] = best;
            }
            prev = row;
        }
        (1..=hay.len())
            .filter(|&j| !(last_digit && digit_at(j)))
            .map(|j| (prev[j].0, j))
            .filter(|(e, _)| *e <= edits)
            .min()
            .map(|(_, end)| (prev[end].1, end))
    }

    /// The boxes of every word in which one of `wants` was read, each occurrence.
    pub(crate) fn boxes_of(&self, wants: &[&str]) -> Vec<[usize; 4]> {
        let mut taken = Vec::new();
        for want in wants {
            while let Some(range) = self.find(want, &taken) {
                taken.push(range);
            }
        }
        let mut words: Vec<usize> = taken
            .iter()
            .flat_map(|(a, b)| self.word[*a..*b].iter().flatten().copied())
            .collect();
        words.sort_unstable();
        words.dedup();
        words.into_iter().map(|w| self.boxes[w]).collect()
    }

    /// What was read before `want`'s match (to read a count written before its word).
    pub(crate) fn text_before(&self, want: &str) -> Option<String> {
        let (start, _) = self.find(want, &[])?;
        Some(self.chars[..start].iter().collect())
    }
}

/// A wanted text as the matcher sees it: normalised, without spaces.
fn needle(want: &str) -> Vec<char> {
    want.chars()
        .filter_map(normal)
        .filter(|c| *c != ' ')
        .collect()
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.chars.iter().collect::<String>())
    }
}

#[test]
fn ocr_matching_forgives_known_confusions_and_keeps_numbers_exact() {
    let r = Reading::plain;
    // The misreading that made a run fail: "Detail: air/1" read as "detail:ait/1".
    assert!(r("Detail: ait/1 10 l 40 050 minutes ago").has("detail:air/1"));
    // Confusions cost nothing, even in a short word; spaces and dropped marks are free.
    assert!(r("Air sensors I").has("airsensors1"));
    assert!(r("Meters l95").has("meters195"));
    assert!(r("Signal heads 1 6 8").has("signalheads168"));
    assert!(r("PLAYBACK 2026-11-23 07:00").has("playback2026-11-2307:00"));
    assert!(
        r("Street lighting, kW by hour from rnidnight").has("streetlighting,kwbyhourfrommidnight")
    );
    // Numbers are exact and stand alone.
    assert!(!r("Meters 196").has("meters195"));
    assert!(!r("Signal heads 1680").has("signalheads168"));
    assert!(!r("Signal heads 2168").has("168"));
    assert!(!r("Air sensors 17").has("airsensors1"));
    assert!(!r("1 h").has("2h"));
    // A short word is read exactly; a long one allows an edit per 8 letters, no more.
    assert!(!r("Lamp").has("lamps"));
    assert!(r("Lightng cost (SEK)").has("lightingcost(sek)"));
    assert!(!r("Lghtng cost (SEK)").has("lightingcost(sek)"));
    assert!(!r("Norrmalm and Östermalm").has("norrmalmochostermalm"));
    assert!(r("Norrmalm och Östermalm").has("norrmalmochostermalm"));
    // Absence is checked without edits: a near miss is another word.
    assert!(!r("Lager").has_exact("layers"));
    assert!(r("Layers").has_exact("layers"));
    // Nothing is read from nothing.
    assert!(!r("").has("lamps"));
    assert_eq!(r("x").missing(&["a", "x"]), ["a"]);
}

#[test]
fn ocr_readings_keep_each_words_box() {
    let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
               1\t1\t0\t0\t0\t0\t0\t0\t800\t500\t-1\t\n\
               5\t1\t1\t1\t1\t1\t10\t20\t40\t9\t96\tSignal\n\
               5\t1\t1\t1\t1\t2\t52\t20\t30\t9\t95\theads\n\
               5\t1\t1\t1\t1\t3\t90\t20\t20\t9\t91\t168\n\
               5\t1\t1\t1\t2\t1\t10\t40\t30\t9\t90\tMeters\n\
               5\t1\t1\t1\t2\t2\t45\t40\t20\t9\t90\t195\n";
    let reading = Reading::from_tsv(tsv);
    assert_eq!(reading.to_string(), "signal heads 168 meters 195");
    assert_eq!(
        reading.boxes_of(&["signalheads168"]),
        [[10, 20, 40, 9], [52, 20, 30, 9], [90, 20, 20, 9]]
    );
    assert_eq!(reading.boxes_of(&["195"]), [[45, 40, 20, 9]]);
    assert!(reading.boxes_of(&["lamps"]).is_empty());
    assert_eq!(
        reading.text_before("meters").as_deref(),
        Some("signal heads 168 ")
    );
}

//! Unified diffs as the change review needs them: read one (its hunks and git's blob ids), compose two
//! (`X→Y` then `Y→Z` is `X→Z`), turn one around, diff two texts line by line, and write the result as a
//! unified diff again.
//!
//! A diff is known only inside its hunks (the changed lines and their context), so composing works on
//! those windows: where the two diffs' windows touch they are merged, and inside a merged window both
//! ends are rebuilt and diffed again. Where the windows overlap they must agree on the middle version,
//! else the diffs do not follow each other and composing fails.

/// One hunk: lines of the old and the new version (context included), from 0-based line positions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hunk {
    /// Position of its first old line (or, with no old lines, of the line it comes before).
    pub old_at: usize,
    /// The old lines.
    pub old: Vec<String>,
    /// Position of its first new line (likewise).
    pub new_at: usize,
    /// The new lines.
    pub new: Vec<String>,
}

/// A diff read: its hunks in order, and git's blob ids of both ends when it names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patch {
    /// The hunks, in order, not overlapping.
    pub hunks: Vec<Hunk>,
    /// The old blob's id (`index OLD..NEW`), if given.
    pub old_id: Option<String>,
    /// The new blob's id, if given.
    pub new_id: Option<String>,
}

/// Reads a unified diff of one file. `None` when it cannot be read as one: no hunks where a header
/// promised some, counts that do not add up (a clipped diff), a binary file.
pub fn parse(text: &str) -> Option<Patch> {
    let mut patch = Patch::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(ids) = line.strip_prefix("index ") {
            let ids = ids.split(' ').next().unwrap_or_default();
            if let Some((a, b)) = ids.split_once("..") {
                patch.old_id = Some(a.to_string());
                patch.new_id = Some(b.to_string());
            }
        } else if line.starts_with("Binary files ") {
            return None;
        } else if let Some(rest) = line.strip_prefix("@@ -") {
            let (old_range, rest) = rest.split_once(" +")?;
            let new_range = rest.split(" @@").next()?;
            let (old_start, old_len) = range(old_range)?;
            let (new_start, new_len) = range(new_range)?;
            let mut h = Hunk {
                old_at: if old_len == 0 { old_start } else { old_start.checked_sub(1)? },
                new_at: if new_len == 0 { new_start } else { new_start.checked_sub(1)? },
                ..Hunk::default()
            };
            while h.old.len() < old_len || h.new.len() < new_len {
                let l = lines.next()?;
                let mark = l.chars().next();
                let body = l.get(1..).unwrap_or_default().to_string();
                match mark {
                    Some(' ') | None => {
                        h.old.push(body.clone());
                        h.new.push(body);
                    }
                    Some('-') => h.old.push(body),
                    Some('+') => h.new.push(body),
                    Some('\\') => {}
                    _ => return None,
                }
            }
            if h.old.len() != old_len || h.new.len() != new_len {
                return None;
            }
            while lines.peek().is_some_and(|l| l.starts_with('\\')) {
                lines.next();
            }
            if patch.hunks.last().is_some_and(|p| p.old_at.saturating_add(p.old.len()) > h.old_at) {
                return None;
            }
            patch.hunks.push(h);
        } else if line.starts_with("@@") {
            return None;
        } else if patch.hunks.last().is_some() && !line.starts_with("diff ") {
            // Text after the last hunk that is not a next file: a note such as a clipping mark.
            return None;
        }
    }
    // Text that is not empty yet has no hunk is not a diff of lines (a mode change, a note).
    (!patch.hunks.is_empty() || text.trim().is_empty()).then_some(patch)
}

/// `start,len` (len 1 when left out).
fn range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

/// The diff the other way round (new to old).
pub fn invert(hunks: &[Hunk]) -> Vec<Hunk> {
    hunks.iter().map(|h| Hunk { old_at: h.new_at, old: h.new.clone(), new_at: h.old_at, new: h.old.clone() }).collect()
}

/// The two versions do not match where both diffs show the middle one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// `first` (X→Y) then `second` (Y→Z) as one diff X→Z, in windows of the middle version where either
/// changes something; a window may hold lines that end up unchanged (see [`changed`]).
pub fn compose(first: &[Hunk], second: &[Hunk]) -> Result<Vec<Hunk>, Mismatch> {
    // Windows of Y: (start, end, from first?, index of the hunk).
    let mut spans: Vec<(usize, usize, bool, usize)> = first
        .iter()
        .enumerate()
        .map(|(i, h)| (h.new_at, h.new_at.saturating_add(h.new.len()), true, i))
        .chain(second.iter().enumerate().map(|(i, h)| (h.old_at, h.old_at.saturating_add(h.old.len()), false, i)))
        .collect();
    spans.sort_unstable_by_key(|s| (s.0, s.1));
    let mut out = Vec::new();
    // What the hunks of the windows done so far add to a line's position, in X and in Z.
    let (mut shift_x, mut shift_z) = (0isize, 0isize);
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end) = (spans[i].0, spans[i].1);
        let mut j = i + 1;
        while j < spans.len() && spans[j].0 <= end {
            end = end.max(spans[j].1);
            j += 1;
        }
        let group = &spans[i..j];
        // The middle version in the window, as the hunks show it.
        let mut y: Vec<Option<&str>> = vec![None; end - start];
        for &(s, _, from_first, k) in group {
            let lines = if from_first { &first[k].new } else { &second[k].old };
            for (n, l) in lines.iter().enumerate() {
                match y[s - start + n] {
                    Some(seen) if seen != l => return Err(Mismatch),
                    _ => y[s - start + n] = Some(l),
                }
            }
        }
        // One end rebuilt: the middle version with one diff's hunks put back (X) or applied (Z).
        let side = |from_first: bool| -> Result<Vec<String>, Mismatch> {
            let mut lines = Vec::new();
            let mut at = start;
            for &(s, e, _, k) in group.iter().filter(|g| g.2 == from_first) {
                for l in y.get(at.max(start) - start..s.max(at) - start).unwrap_or_default() {
                    lines.push(l.ok_or(Mismatch)?.to_string());
                }
                lines.extend(if from_first { &first[k].old } else { &second[k].new }.iter().cloned());
                at = at.max(e);
            }
            for l in &y[at - start..] {
                lines.push(l.ok_or(Mismatch)?.to_string());
            }
            Ok(lines)
        };
        let hunk = Hunk {
            old_at: start.saturating_add_signed(shift_x),
            old: side(true)?,
            new_at: start.saturating_add_signed(shift_z),
            new: side(false)?,
        };
        for &(_, _, from_first, k) in group {
            if from_first {
                shift_x += first[k].old.len() as isize - first[k].new.len() as isize;
            } else {
                shift_z += second[k].new.len() as isize - second[k].old.len() as isize;
            }
        }
        out.push(hunk);
        i = j;
    }
    Ok(out)
}

/// One line of a line diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// In both.
    Same,
    /// Only in the old version.
    Del,
    /// Only in the new version.
    Add,
}

/// Longest window diffed line by line (old × new lines); larger ones show as removed and added whole.
const MAX_CELLS: usize = 4_000_000;

/// The line diff of `old` and `new`: the common start and end kept, the middle by longest common
/// subsequence.
pub fn line_diff<S: AsRef<str>>(old: &[S], new: &[S]) -> Vec<Op> {
    let eq = |a: &S, b: &S| a.as_ref() == b.as_ref();
    let head = old.iter().zip(new).take_while(|(a, b)| eq(a, b)).count();
    let tail = old[head..].iter().rev().zip(new[head..].iter().rev()).take_while(|(a, b)| eq(a, b)).count();
    let (a, b) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut ops = vec![Op::Same; head];
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        ops.extend(std::iter::repeat_n(Op::Del, a.len()).chain(std::iter::repeat_n(Op::Add, b.len())));
    } else {
        // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
        let w = b.len() + 1;
        let mut lcs = vec![0u32; (a.len() + 1) * w];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i * w + j] = if eq(&a[i], &b[j]) {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && eq(&a[i], &b[j]) {
                ops.push(Op::Same);
                (i, j) = (i + 1, j + 1);
            } else if i < a.len() && (j == b.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                // Removed lines before added ones, as diff tools write them.
                ops.push(Op::Del);
                i += 1;
            } else {
                ops.push(Op::Add);
                j += 1;
            }
        }
    }
    ops.extend(std::iter::repeat_n(Op::Same, tail));
    ops
}

/// Whether a hunk changes anything.
pub fn changed(h: &Hunk) -> bool {
    h.old != h.new
}

/// Lines of context kept around a change.
const CONTEXT: usize = 3;

/// Writes `hunks` (whose lines may be mostly unchanged) as unified diff hunks with 3 lines of context,
/// and returns the lines added and removed.
pub fn write_hunks(out: &mut String, hunks: &[Hunk]) -> (u64, u64) {
    let (mut added, mut removed) = (0u64, 0u64);
    for h in hunks.iter().filter(|h| changed(h)) {
        let ops = line_diff(&h.old, &h.new);
        // Each op with its old and new line positions (relative to the hunk).
        let mut at = Vec::with_capacity(ops.len());
        let (mut o, mut n) = (0usize, 0usize);
        for op in &ops {
            at.push((o, n));
            match op {
                Op::Same => (o, n) = (o + 1, n + 1),
                Op::Del => o += 1,
                Op::Add => n += 1,
            }
        }
        let mut k = 0;
        while let Some(first) = ops[k..].iter().position(|op| *op != Op::Same).map(|p| p + k) {
            // Extend over changes closer than twice the context.
            let mut last = first;
            let mut m = first;
            while m < ops.len() {
                if ops[m] != Op::Same {
                    last = m;
                } else if m - last > 2 * CONTEXT {
                    break;
                }
                m += 1;
            }
            let from = first.saturating_sub(CONTEXT);
            let to = (last + 1 + CONTEXT).min(ops.len());
            let part = &ops[from..to];
            let olen = part.iter().filter(|op| **op != Op::Add).count();
            let nlen = part.iter().filter(|op| **op != Op::Del).count();
            let (o0, n0) = at[from];
            let start = |base: usize, len: usize| if len == 0 { base } else { base.saturating_add(1) };
            out.push_str(&format!(
                "@@ -{},{olen} +{},{nlen} @@\n",
                start(h.old_at.saturating_add(o0), olen),
                start(h.new_at.saturating_add(n0), nlen)
            ));
            for (op, &(oi, ni)) in part.iter().zip(&at[from..to]) {
                let (mark, line) = match op {
                    Op::Same => (' ', &h.old[oi]),
                    Op::Del => {
                        removed += 1;
                        ('-', &h.old[oi])
                    }
                    Op::Add => {
                        added += 1;
                        ('+', &h.new[ni])
                    }
                };
                out.push(mark);
                out.push_str(line);
                out.push('\n');
            }
            k = to;
        }
    }
    (added, removed)
}

/// A whole-file diff of `old` (`None`: no file) to `new` as unified diff text with `--- a/path` and
/// `+++ b/path` headers, and the lines added and removed; empty text when nothing changed.
pub fn files(path: &str, old: Option<&str>, new: Option<&str>) -> (String, u64, u64) {
    let lines = |t: Option<&str>| t.map(|t| t.lines().map(str::to_string).collect::<Vec<_>>()).unwrap_or_default();
    let hunk = Hunk { old_at: 0, old: lines(old), new_at: 0, new: lines(new) };
    if !changed(&hunk) && old.is_some() == new.is_some() {
        return (String::new(), 0, 0);
    }
    let mut out = header(path, old.is_some(), new.is_some());
    let (a, r) = write_hunks(&mut out, &[hunk]);
    (out, a, r)
}

/// `--- a/path` / `+++ b/path` (`/dev/null` for a side with no file).
pub fn header(path: &str, old: bool, new: bool) -> String {
    let side = |there: bool, p: &str| if there { format!("{p}/{path}") } else { "/dev/null".into() };
    format!("--- {}\n+++ {}\n", side(old, "a"), side(new, "b"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n";

    fn diff(old: &str, new: &str) -> String {
        files("f.txt", Some(old), Some(new)).0
    }

    #[test]
    fn line_diffs_are_written_and_read_back() {
        let new = BASE.replace("two\n", "TWO\n").replace("nine\n", "");
        let text = diff(BASE, &new);
        assert_eq!(
            text,
            "--- a/f.txt\n+++ b/f.txt\n@@ -1,10 +1,9 @@\n one\n-two\n+TWO\n three\n four\n five\n six\n seven\n eight\n-nine\n ten\n"
        );
        let far = BASE.replace("one\n", "ONE\n").replace("ten\n", "TEN\n") + &"x\n".repeat(0);
        let p = parse(&diff(&(BASE.to_string() + "a\nb\nc\n"), &(far + "a\nb\nc\n"))).unwrap();
        assert_eq!(p.hunks.len(), 2, "changes far apart are two hunks");
        assert_eq!((p.hunks[1].old_at, p.hunks[1].old.len()), (6, 7));
        assert_eq!(files("n.txt", None, Some("a\n")).0, "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,1 @@\n+a\n");
        assert_eq!(diff(BASE, BASE), "");
        // A clipped diff is not read as a whole one.
        assert!(parse("@@ -1,3 +1,3 @@\n a\n-b\n+c\n[diff output truncated at 65536 bytes]\n").is_none());
    }

    #[test]
    fn composing_two_edits_of_one_line_is_one_change() {
        let a = parse(&diff(BASE, &BASE.replace("five", "5"))).unwrap();
        let b = parse(&diff(&BASE.replace("five", "5"), &BASE.replace("five", "FIVE"))).unwrap();
        let net = compose(&a.hunks, &b.hunks).unwrap();
        let mut out = String::new();
        assert_eq!(write_hunks(&mut out, &net), (1, 1));
        assert_eq!(out, "@@ -2,7 +2,7 @@\n two\n three\n four\n-five\n+FIVE\n six\n seven\n eight\n");
        // An edit then its revert: nothing.
        let back = invert(&a.hunks);
        assert!(compose(&a.hunks, &back).unwrap().iter().all(|h| !changed(h)));
        // Diffs that do not follow each other are refused.
        let other = parse(&diff(BASE, &BASE.replace("five", "cinq"))).unwrap();
        assert_eq!(compose(&a.hunks, &other.hunks), Err(Mismatch));
    }
}

//! Server-sent events: the incremental [`SseParser`], [`EventMapper`]s and the [`SseDecoder`] joining them.

use crate::model::{ModelDelta, ModelError};

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event had none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// The last `id:` seen in the stream, if any.
    pub id: Option<String>,
}

/// An incremental server-sent-events parser. Feed it the body in chunks of any size with
/// [`SseParser::feed`]; it yields each event once its closing empty line arrived.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting the next one belongs to it.
    skip_lf: bool,
    /// The first line was seen (a UTF-8 byte-order mark is dropped from it).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next chunk of the body, pushing every event it completes onto `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut start = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                start = 1;
            }
        }
        while let Some(pos) = chunk[start..].iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = start + pos;
            if self.line.is_empty() {
                self.line_done(&chunk[start..end], out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[start..end]);
                self.line_done(&line, out);
                line.clear();
                self.line = line;
            }
            start = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(end + 1) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.line.extend_from_slice(&chunk[start..]);
    }

    /// Ends the stream. An event not closed by an empty line is discarded (as the SSE specification
    /// says); returns whether there was one (or a partial line).
    pub fn finish(&mut self) -> bool {
        let pending = !self.line.is_empty() || self.has_data || !self.event.is_empty();
        self.line.clear();
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        pending
    }

    fn line_done(&mut self, mut line: &[u8], out: &mut Vec<SseEvent>) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            if self.has_data {
                self.has_data = false;
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                });
            } else {
                self.event.clear();
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                push_utf8(&mut self.data, value);
            }
            b"event" => {
                self.event.clear();
                push_utf8(&mut self.event, value);
            }
            b"id" if !value.contains(&0) => {
                let mut id = String::new();
                push_utf8(&mut id, value);
                self.id = Some(id);
            }
            _ => {}
        }
    }
}

fn push_utf8(to: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => to.push_str(s),
        Err(_) => to.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// What a mapper tells the transport after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The answer is complete (Anthropic's `message_stop`, OpenAI's `[DONE]`); stop reading.
    Done,
}

/// Turns the events of one wire format into [`ModelDelta`]s. One mapper serves one attempt of one
/// call; the transport clones a fresh one for each attempt.
pub trait EventMapper: Send + 'static {
    /// Maps one event, pushing its deltas onto `out`. An error event of the API is returned as the
    /// matching [`ModelError`] (its retryable kinds are retried when no output was given yet).
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError>;

    /// The body ended without [`Flow::Done`]. Pushes any final deltas, or fails with
    /// [`ModelError::StreamBroken`] when the answer is incomplete (the transport reports that as
    /// [`ModelError::Connection`] when no output was given yet, and retries it).
    fn on_end(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError>;
}

/// An [`SseParser`] and an [`EventMapper`]: bytes in, deltas out.
#[derive(Debug)]
pub struct SseDecoder<M> {
    parser: SseParser,
    mapper: M,
    events: Vec<SseEvent>,
    done: bool,
}

impl<M: EventMapper> SseDecoder<M> {
    /// A decoder at the start of a stream.
    pub fn new(mapper: M) -> Self {
        Self { parser: SseParser::new(), mapper, events: Vec::new(), done: false }
    }

    /// Decodes the next chunk, pushing deltas onto `out`. After [`Flow::Done`] further input is ignored.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ModelDelta>) -> Result<Flow, ModelError> {
        if self.done {
            return Ok(Flow::Done);
        }
        self.parser.feed(chunk, &mut self.events);
        let mut result = Ok(Flow::Continue);
        for event in self.events.drain(..) {
            match self.mapper.on_event(&event, out) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    self.done = true;
                    result = Ok(Flow::Done);
                    break;
                }
                Err(e) => {
                    self.done = true;
                    result = Err(e);
                    break;
                }
            }
        }
        self.events.clear();
        result
    }

    /// The body ended: pushes final deltas, or fails when the answer is incomplete.
    pub fn finish(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.parser.finish() {
            tracing::debug!("the stream ended inside an event; the partial event was discarded");
        }
        self.mapper.on_end(out)
    }
}

/// Decodes a whole recorded SSE body in memory (e.g. a cassette, or a benchmark).
pub fn decode_sse<M: EventMapper>(mapper: M, body: &[u8]) -> Result<Vec<ModelDelta>, ModelError> {
    let mut decoder = SseDecoder::new(mapper);
    let mut out = Vec::new();
    if decoder.feed(body, &mut out)? == Flow::Continue {
        decoder.finish(&mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts {
            p.feed(&input[last..c], &mut out);
            last = c;
        }
        p.feed(&input[last..], &mut out);
        p.finish();
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into(), id: None }
    }

    #[test]
    fn parses_events_at_every_split_point() {
        let input = "\u{feff}: comment\r\nevent: a\r\ndata: h\u{e9}llo \u{1f600}\r\ndata:  two\r\n\r\n\
                     event:b\rdata:x\r\rdata\n\nid: 7\ndata: {\"k\": 1}\n\nevent: c\ndata: cut"
            .as_bytes();
        let want = vec![
            ev("a", "h\u{e9}llo \u{1f600}\n two"),
            ev("b", "x"),
            ev("", ""),
            SseEvent { event: String::new(), data: "{\"k\": 1}".into(), id: Some("7".into()) },
        ];
        assert_eq!(parse_in_pieces(input, &[]), want);
        for i in 0..=input.len() {
            assert_eq!(parse_in_pieces(input, &[i]), want, "split at {i}");
        }
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(parse_in_pieces(input, &[i, j]), want, "split at {i}, {j}");
            }
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(parse_in_pieces(input, &bytewise), want);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_a_cut_event_is_dropped() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"event: ping\n\ndata: whole\n\ndata: half", &mut out);
        assert_eq!(out, vec![ev("", "whole")]);
        assert!(p.finish());
    }
}

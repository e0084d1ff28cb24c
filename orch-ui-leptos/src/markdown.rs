//! A small, safe markdown renderer for chat messages: everything is HTML-escaped first, then a few
//! constructs become tags (fenced and inline code, headings, bullet and numbered lists, bold, italics,
//! and links to `http(s)` only). No HTML from the message ever reaches the page as HTML.

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(PartialEq)]
enum Block {
    None,
    Para,
    Bullets,
    Numbers,
}

/// `text` as HTML.
pub fn to_html(text: &str) -> String {
    let mut out = String::new();
    let mut block = Block::None;
    let mut code: Option<String> = None;
    let close = |out: &mut String, block: &mut Block| {
        match block {
            Block::Para => out.push_str("</p>"),
            Block::Bullets => out.push_str("</ul>"),
            Block::Numbers => out.push_str("</ol>"),
            Block::None => {}
        }
        *block = Block::None;
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            match code.take() {
                Some(body) => {
                    out.push_str("<pre><code>");
                    out.push_str(&escape(body.trim_end_matches('\n')));
                    out.push_str("</code></pre>");
                }
                None => {
                    close(&mut out, &mut block);
                    code = Some(String::new());
                }
            }
            continue;
        }
        if let Some(body) = code.as_mut() {
            body.push_str(line);
            body.push('\n');
            continue;
        }
        if trimmed.is_empty() {
            close(&mut out, &mut block);
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            close(&mut out, &mut block);
            let level = (hashes + 2).min(6);
            out.push_str(&format!("<h{level}>{}</h{level}>", inline(trimmed[hashes..].trim())));
            continue;
        }
        let bullet = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* "));
        let number = trimmed
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()))
            .map(|(_, rest)| rest);
        if let Some(item) = bullet {
            if block != Block::Bullets {
                close(&mut out, &mut block);
                out.push_str("<ul>");
                block = Block::Bullets;
            }
            out.push_str(&format!("<li>{}</li>", inline(item)));
        } else if let Some(item) = number {
            if block != Block::Numbers {
                close(&mut out, &mut block);
                out.push_str("<ol>");
                block = Block::Numbers;
            }
            out.push_str(&format!("<li>{}</li>", inline(item)));
        } else {
            if block != Block::Para {
                close(&mut out, &mut block);
                out.push_str("<p>");
                block = Block::Para;
            } else {
                out.push_str("<br>");
            }
            out.push_str(&inline(trimmed));
        }
    }
    if let Some(body) = code {
        // An unclosed fence: the rest is code.
        out.push_str("<pre><code>");
        out.push_str(&escape(body.trim_end_matches('\n')));
        out.push_str("</code></pre>");
    }
    close(&mut out, &mut block);
    out
}

/// Inline markup of one line: `code`, **bold**, *italics*, [text](https://…).
fn inline(line: &str) -> String {
    let mut out = String::new();
    // Code spans first: their content is not formatted further.
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&emphasis(&links(part)));
        }
    }
    if line.matches('`').count() % 2 == 1 {
        // An unmatched backtick: render the line plainly rather than guess.
        return emphasis(&links(line));
    }
    out
}

/// Links (escaping everything else).
fn links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some((label, tail)) = after.split_once("](") else { break };
        let Some((url, remaining)) = tail.split_once(')') else { break };
        let url = url.trim();
        out.push_str(&escape(&rest[..open]));
        if (url.starts_with("https://") || url.starts_with("http://")) && !label.contains('[') {
            out.push_str(&format!(
                "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a>",
                escape(url),
                escape(label)
            ));
        } else {
            out.push_str(&escape(&format!("[{label}]({url})")));
        }
        rest = remaining;
    }
    out.push_str(&escape(rest));
    out
}

/// `**bold**` and `*italics*` on already escaped text (the markers are not escaped characters).
fn emphasis(s: &str) -> String {
    let bold = wrap(s, "**", "strong");
    wrap(&bold, "*", "em")
}

fn wrap(s: &str, marker: &str, tag: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    loop {
        // An opener is followed by a non-space, a closer preceded by one ("2 * 3" stays as it is).
        let opener = rest
            .match_indices(marker)
            .map(|(i, _)| i)
            .find(|i| rest[i + marker.len()..].chars().next().is_some_and(|c| !c.is_whitespace() && c != '*'));
        let Some(open) = opener else { break };
        let after = &rest[open + marker.len()..];
        let closer = after
            .match_indices(marker)
            .map(|(i, _)| i)
            .find(|i| *i > 0 && after[..*i].chars().next_back().is_some_and(|c| !c.is_whitespace()));
        let Some(close) = closer else { break };
        out.push_str(&rest[..open]);
        out.push_str(&format!("<{tag}>{}</{tag}>", &after[..close]));
        rest = &after[close + marker.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_in_a_message_is_never_html() {
        let html = to_html("<script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        let html = to_html("[x](javascript:alert(1)) [y](https://e.invalid/\"onmouseover=\"z)");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(html.contains("href=\"https://e.invalid/&quot;onmouseover=&quot;z\""), "{html}");
        let html = to_html("```\n<b>x</b>\n```");
        assert_eq!(html, "<pre><code>&lt;b&gt;x&lt;/b&gt;</code></pre>");
    }

    #[test]
    fn common_markdown() {
        assert_eq!(
            to_html("# Plan\n- **one**\n- `two`"),
            "<h3>Plan</h3><ul><li><strong>one</strong></li><li><code>two</code></li></ul>"
        );
        assert_eq!(to_html("1. a\n2. *b*\n\nend"), "<ol><li>a</li><li><em>b</em></li></ol><p>end</p>");
        assert_eq!(to_html("line one\nline two"), "<p>line one<br>line two</p>");
        assert_eq!(to_html("a * b and 2*3"), "<p>a * b and 2*3</p>");
        assert_eq!(
            to_html("see [docs](https://x.invalid)"),
            "<p>see <a href=\"https://x.invalid\" target=\"_blank\" rel=\"noopener noreferrer\">docs</a></p>"
        );
        assert_eq!(to_html("odd ` tick"), "<p>odd ` tick</p>");
    }
}

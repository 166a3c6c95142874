//! JIRA's rich text as the Markdown opsboard stores: descriptions and comments come as an
//! Atlassian Document Format document (JIRA Cloud, API v3) or as wiki text (Data Center, API
//! v2). What has no Markdown form (panels, colours, media) keeps its text, so nothing a person
//! wrote is lost.

use serde_json::Value;

/// The Markdown of a description or comment body: ADF when it is a JSON object, wiki text when
/// it is a string, empty when absent.
pub fn to_markdown(body: Option<&Value>) -> String {
    match body {
        Some(Value::String(wiki)) => wiki_to_markdown(wiki),
        Some(doc @ Value::Object(_)) => adf_to_markdown(doc),
        _ => String::new(),
    }
}

/// An ADF document as Markdown.
pub fn adf_to_markdown(doc: &Value) -> String {
    let mut out = String::new();
    blocks(doc, &mut out, "");
    out.trim_end().to_string()
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("attrs").and_then(|a| a.get(name))
}

/// Block nodes, each ended by a blank line; `indent` prefixes every line (list items, quotes).
fn blocks(node: &Value, out: &mut String, indent: &str) {
    for child in children(node) {
        block(child, out, indent);
    }
}

fn block(node: &Value, out: &mut String, indent: &str) {
    let kind = node.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "paragraph" => {
            let text = inline(node);
            out.push_str(indent);
            out.push_str(&text.replace('\n', &format!("\n{indent}")));
            out.push_str("\n\n");
        }
        "heading" => {
            let level = attr(node, "level")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 6);
            out.push_str(&format!(
                "{indent}{} {}\n\n",
                "#".repeat(level as usize),
                inline(node)
            ));
        }
        "bulletList" | "orderedList" => {
            let ordered = kind == "orderedList";
            for (n, item) in children(node).iter().enumerate() {
                let marker = if ordered {
                    format!("{}. ", n + 1)
                } else {
                    "- ".to_string()
                };
                let mut inner = String::new();
                let nested = format!("{indent}{}", " ".repeat(marker.len()));
                blocks(item, &mut inner, &nested);
                let inner = inner.trim_end();
                let inner = inner.strip_prefix(nested.as_str()).unwrap_or(inner);
                out.push_str(&format!(
                    "{indent}{marker}{}\n",
                    inner.replace("\n\n", "\n")
                ));
            }
            out.push('\n');
        }
        "codeBlock" => {
            let language = attr(node, "language").and_then(Value::as_str).unwrap_or("");
            let code: String = children(node)
                .iter()
                .filter_map(|t| t.get("text").and_then(Value::as_str))
                .collect();
            out.push_str(&format!("{indent}```{language}\n"));
            for line in code.lines() {
                out.push_str(&format!("{indent}{line}\n"));
            }
            out.push_str(&format!("{indent}```\n\n"));
        }
        "blockquote" | "panel" => {
            let mut inner = String::new();
            blocks(node, &mut inner, "");
            for line in inner.trim_end().lines() {
                out.push_str(&format!("{indent}> {line}\n"));
            }
            out.push('\n');
        }
        "rule" => out.push_str(&format!("{indent}---\n\n")),
        "table" => {
            for (n, row) in children(node).iter().enumerate() {
                let cells: Vec<String> = children(row)
                    .iter()
                    .map(|cell| {
                        let mut text = String::new();
                        blocks(cell, &mut text, "");
                        text.trim().replace('\n', " ").replace('|', "\\|")
                    })
                    .collect();
                out.push_str(&format!("{indent}| {} |\n", cells.join(" | ")));
                if n == 0 {
                    out.push_str(&format!(
                        "{indent}|{}\n",
                        " --- |".repeat(cells.len().max(1))
                    ));
                }
            }
            out.push('\n');
        }
        "mediaSingle" | "mediaGroup" | "media" => {
            out.push_str(&format!("{indent}[attachment]\n\n"));
        }
        _ if node.get("content").is_some() => {
            // Unknown containers (expand, layouts, …): their blocks, or their inline text.
            let has_blocks = children(node)
                .iter()
                .any(|c| c.get("content").is_some() || c.get("type") == Some(&"rule".into()));
            if has_blocks {
                blocks(node, out, indent);
            } else {
                out.push_str(&format!("{indent}{}\n\n", inline(node)));
            }
        }
        _ => {
            let text = inline_node(node);
            if !text.is_empty() {
                out.push_str(&format!("{indent}{text}\n\n"));
            }
        }
    }
}

/// The inline content of a block as one Markdown string.
fn inline(node: &Value) -> String {
    children(node).iter().map(inline_node).collect()
}

fn inline_node(node: &Value) -> String {
    let kind = node.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "text" => {
            let mut text = node
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let marks = node
                .get("marks")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Markdown's emphasis may not begin or end with a space: keep the spaces outside.
            let (lead, rest) = text.split_at(text.len() - text.trim_start().len());
            let (core, trail) = rest.split_at(rest.trim_end().len());
            let (lead, trail) = (lead.to_string(), trail.to_string());
            text = core.to_string();
            if text.is_empty() {
                return format!("{lead}{trail}");
            }
            for mark in marks {
                let mark_type = mark.get("type").and_then(Value::as_str).unwrap_or_default();
                text = match mark_type {
                    "strong" => format!("**{text}**"),
                    "em" => format!("*{text}*"),
                    "code" => format!("`{text}`"),
                    "strike" => format!("~~{text}~~"),
                    "link" => {
                        let href = attr(mark, "href").and_then(Value::as_str).unwrap_or("");
                        format!("[{text}]({href})")
                    }
                    _ => text,
                };
            }
            format!("{lead}{text}{trail}")
        }
        "hardBreak" => "\n".into(),
        "mention" => attr(node, "text")
            .and_then(Value::as_str)
            .map(|t| {
                if t.starts_with('@') {
                    t.to_string()
                } else {
                    format!("@{t}")
                }
            })
            .unwrap_or_else(|| "@someone".into()),
        "emoji" => attr(node, "text")
            .or_else(|| attr(node, "shortName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        "inlineCard" | "blockCard" => attr(node, "url")
            .and_then(Value::as_str)
            .map(|u| format!("<{u}>"))
            .unwrap_or_default(),
        "status" => attr(node, "text")
            .and_then(Value::as_str)
            .map(|t| format!("[{t}]"))
            .unwrap_or_default(),
        "date" => attr(node, "timestamp")
            .and_then(|t| {
                t.as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .or(t.as_i64())
            })
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.date_naive().to_string())
            .unwrap_or_default(),
        _ => inline(node),
    }
}

/// JIRA wiki markup as Markdown: headings, bold, italics, monospace, strike-through, code and
/// noformat blocks, quotes, nested lists, links and tables. What it does not know stays as
/// written.
pub fn wiki_to_markdown(wiki: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in wiki.replace("\r\n", "\n").lines() {
        let trimmed = line.trim_start();
        if in_code {
            if let Some(rest) = close_code(trimmed) {
                out.push("```".into());
                in_code = false;
                if !rest.trim().is_empty() {
                    out.push(wiki_inline(rest));
                }
            } else {
                out.push(line.to_string());
            }
            continue;
        }
        if let Some((language, rest)) = open_code(trimmed) {
            out.push(format!("```{language}"));
            in_code = true;
            if !rest.is_empty() {
                if let Some(after) = close_code(rest) {
                    out.push("```".into());
                    in_code = false;
                    let _ = after;
                } else {
                    out.push(rest.to_string());
                }
            }
            continue;
        }
        if let Some((level, text)) = heading(trimmed) {
            out.push(format!("{} {}", "#".repeat(level), wiki_inline(text)));
        } else if let Some(text) = trimmed.strip_prefix("bq. ") {
            out.push(format!("> {}", wiki_inline(text)));
        } else if let Some((depth, ordered, text)) = list_item(trimmed) {
            let marker = if ordered { "1." } else { "-" };
            out.push(format!(
                "{}{marker} {}",
                "  ".repeat(depth - 1),
                wiki_inline(text)
            ));
        } else if trimmed.starts_with("||") {
            let cells: Vec<String> = trimmed
                .trim_matches('|')
                .split("||")
                .map(|c| wiki_inline(c.trim()))
                .collect();
            out.push(format!("| {} |", cells.join(" | ")));
            out.push(format!("|{}", " --- |".repeat(cells.len())));
        } else if trimmed.starts_with('|') && trimmed.len() > 1 {
            let cells: Vec<String> = trimmed
                .trim_matches('|')
                .split('|')
                .map(|c| wiki_inline(c.trim()))
                .collect();
            out.push(format!("| {} |", cells.join(" | ")));
        } else if trimmed == "----" {
            out.push("---".into());
        } else {
            out.push(wiki_inline(line));
        }
    }
    if in_code {
        out.push("```".into());
    }
    out.join("\n").trim().to_string()
}

fn open_code(line: &str) -> Option<(String, &str)> {
    for tag in ["{code", "{noformat"] {
        if let Some(rest) = line.strip_prefix(tag) {
            let (options, rest) = match rest.strip_prefix(':') {
                Some(r) => r.split_once('}')?,
                None => ("", rest.strip_prefix('}')?),
            };
            let language = options
                .split('|')
                .find(|o| !o.contains('='))
                .unwrap_or("")
                .trim()
                .to_string();
            return Some((language, rest));
        }
    }
    None
}

fn close_code(line: &str) -> Option<&str> {
    line.strip_prefix("{code}")
        .or_else(|| line.strip_prefix("{noformat}"))
        .or_else(|| {
            line.strip_suffix("{code}")
                .or_else(|| line.strip_suffix("{noformat}"))
                .filter(|l| l.trim().is_empty())
        })
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let rest = line.strip_prefix('h')?;
    let level = rest.chars().next()?.to_digit(10)? as usize;
    let text = rest.get(1..)?.strip_prefix(". ")?;
    (1..=6).contains(&level).then_some((level, text))
}

fn list_item(line: &str) -> Option<(usize, bool, &str)> {
    let markers: String = line
        .chars()
        .take_while(|c| *c == '*' || *c == '#' || *c == '-')
        .collect();
    if markers.is_empty() {
        return None;
    }
    let text = line[markers.len()..].strip_prefix(' ')?;
    // `*bold*` at the start of a line is not a list: a list marker is followed by a space.
    let ordered = markers.ends_with('#');
    Some((markers.len(), ordered, text))
}

/// Inline wiki markup of one line.
fn wiki_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // {{monospace}}
        if c == '{'
            && chars.get(i + 1) == Some(&'{')
            && let Some(end) = find(&chars, i + 2, &['}', '}'])
        {
            let inner: String = chars[i + 2..end].iter().collect();
            out.push_str(&format!("`{inner}`"));
            i = end + 2;
            continue;
        }
        // [text|url] or [url]
        if c == '['
            && let Some(end) = chars[i + 1..].iter().position(|c| *c == ']')
        {
            let inner: String = chars[i + 1..i + 1 + end].iter().collect();
            let link = match inner.split_once('|') {
                Some((label, url)) if looks_like_url(url) => Some(format!("[{label}]({url})")),
                None if looks_like_url(&inner) => Some(format!("<{inner}>")),
                _ => None,
            };
            if let Some(link) = link {
                out.push_str(&link);
                i += end + 2;
                continue;
            }
        }
        // *bold*, _italic_, -strike-: a marker at a word's start with its closing twin at a
        // word's end on the same line.
        if matches!(c, '*' | '_' | '-') {
            let at_start = i == 0 || !chars[i - 1].is_alphanumeric();
            if at_start && chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) {
                let close = (i + 2..chars.len()).find(|&j| {
                    chars[j] == c
                        && !chars[j - 1].is_whitespace()
                        && chars.get(j + 1).is_none_or(|n| !n.is_alphanumeric())
                });
                if let Some(close) = close {
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = wiki_inline(&inner);
                    out.push_str(&match c {
                        '*' => format!("**{inner}**"),
                        '_' => format!("*{inner}*"),
                        _ => format!("~~{inner}~~"),
                    });
                    i = close + 1;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn find(chars: &[char], from: usize, pattern: &[char; 2]) -> Option<usize> {
    (from..chars.len().saturating_sub(1))
        .find(|&j| chars[j] == pattern[0] && chars[j + 1] == pattern[1])
}

fn looks_like_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://") || text.starts_with("mailto:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adf_becomes_markdown() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Fehlerbild"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Upload "},
                {"type": "text", "text": "bricht ab", "marks": [{"type": "strong"}]},
                {"type": "text", "text": ", siehe "},
                {"type": "text", "text": "Log", "marks": [{"type": "link", "attrs": {"href": "https://example.org/log"}}]},
                {"type": "hardBreak"},
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Anna Berg"}}
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Chrome"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Firefox"}]}]}
            ]},
            {"type": "codeBlock", "attrs": {"language": "json"}, "content": [{"type": "text", "text": "{\"a\": 1}"}]},
            {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "x"}}]}
        ]});
        assert_eq!(
            adf_to_markdown(&doc),
            "## Fehlerbild\n\nUpload **bricht ab**, siehe [Log](https://example.org/log)\n@Anna Berg\n\n\
             - Chrome\n- Firefox\n\n```json\n{\"a\": 1}\n```\n\n[attachment]"
        );
    }

    #[test]
    fn wiki_text_becomes_markdown() {
        let wiki = "h1. Fehlerbild\nDer *Upload* bricht _immer_ ab, siehe [Log|https://example.org/log].\n\
                    * Chrome\n** Version 120\n# erstens\n{code:java}\nint a = 1;\n{code}\n\
                    ||Feld||Wert||\n|a|b|\nbq. zitiert\n{{mono}} und -weg- und ein - Strich";
        assert_eq!(
            wiki_to_markdown(wiki),
            "# Fehlerbild\nDer **Upload** bricht *immer* ab, siehe [Log](https://example.org/log).\n\
             - Chrome\n  - Version 120\n1. erstens\n```java\nint a = 1;\n```\n\
             | Feld | Wert |\n| --- | --- |\n| a | b |\n> zitiert\n`mono` und ~~weg~~ und ein - Strich"
        );
    }

    #[test]
    fn absent_and_plain_bodies() {
        assert_eq!(to_markdown(None), "");
        assert_eq!(to_markdown(Some(&json!(null))), "");
        assert_eq!(to_markdown(Some(&json!("Nur Text"))), "Nur Text");
        assert_eq!(
            to_markdown(Some(&json!("snake_case_name und a*b*c"))),
            "snake_case_name und a*b*c"
        );
    }
}

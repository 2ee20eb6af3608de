//! The document as one self-contained HTML page: inline CSS, inline SVG,
//! and one inline script that checks the charts drew. A Content Security
//! Policy forbids anything else, so the page cannot fetch a resource even
//! if one slipped in.

use std::collections::HashSet;
use std::fmt::Write;

use super::doc::{Block, Cell, Inline, Table, Tone};

/// Escapes text for HTML and SVG, in content and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fff}
main{max-width:1120px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}
h2{font-size:20px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
h3{font-size:16px;margin-top:26px}
h4{font-size:14px;margin:20px 0 6px}
nav{font-size:13px;color:#555}
nav a{margin-right:14px}
a{color:#0b5cad}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #dcdcdc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tfoot td{font-weight:600;background:#fafafa}
td.good{background:#e7f5ea}
td.bad{background:#fde8e6}
td.faint{color:#aaa}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:0 3px;border-radius:3px}
td code{background:none;padding:0}
figure{margin:6px 0 4px}
figcaption{font-size:12px;color:#555;max-width:860px}
svg.chart{display:block;max-width:100%;height:auto;border:1px solid #eee}
svg.chart text{font:11px system-ui,sans-serif;fill:#333}
details{margin:6px 0}
summary{cursor:pointer;font-weight:600}
p,li{max-width:900px}
";

/// Tells the test (and anyone with a console) whether every chart drew:
/// an SVG that failed to parse or lays out empty has no bounding box.
const CHECK: &str = r#"(function () {
  var charts = document.querySelectorAll("svg.chart"), bad = [];
  for (var i = 0; i < charts.length; i++) {
    var c = charts[i], b = null, t = c.querySelector("title");
    try { b = c.getBBox(); } catch (e) {}
    if (!b || !(b.width > 0 && b.height > 0) || !t || !t.textContent.trim()) bad.push(c.id || "chart " + (i + 1));
  }
  if (bad.length) console.error("report-check: empty or untitled chart(s): " + bad.join(", "));
  else console.log("report-check: ok " + charts.length + " charts");
})();"#;

/// Heading ids given so far, and the level-2 headings for the navigation.
#[derive(Default)]
struct Ids {
    seen: HashSet<String>,
    nav: Vec<(String, String)>,
}

impl Ids {
    /// `lifecycle.create` -> `lifecycle-create`, unique within the page.
    fn slug(&mut self, text: &str) -> String {
        let mut s: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        while s.contains("--") {
            s = s.replace("--", "-");
        }
        let base = match s.trim_matches('-') {
            "" => "section".to_string(),
            b => b.to_string(),
        };
        let mut id = base.clone();
        let mut n = 2;
        while !self.seen.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

fn inline(spans: &[Inline]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Inline::Text(t) => escape(t),
            Inline::Code(t) => format!("<code>{}</code>", escape(t)),
            Inline::Link { text, href } => format!("<a href=\"{}\">{}</a>", escape(href), escape(text)),
        })
        .collect()
}

fn cell(out: &mut String, tag: &str, c: &Cell, numeric: bool) {
    let mut class = Vec::new();
    if numeric {
        class.push("num");
    }
    match c.tone {
        Tone::Plain => {}
        Tone::Good => class.push("good"),
        Tone::Bad => class.push("bad"),
        Tone::Faint => class.push("faint"),
    }
    if class.is_empty() {
        let _ = write!(out, "<{tag}>{}</{tag}>", inline(&c.spans));
    } else {
        let _ = write!(out, "<{tag} class=\"{}\">{}</{tag}>", class.join(" "), inline(&c.spans));
    }
}

fn table(out: &mut String, t: &Table) {
    let num = |i: usize| t.numeric.get(i) == Some(&true);
    out.push_str("<table><thead><tr>");
    for (i, h) in t.head.iter().enumerate() {
        cell(out, "th", &Cell::text(h.as_str()), num(i));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            cell(out, "td", c, num(i));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>");
    if !t.foot.is_empty() {
        out.push_str("<tfoot>");
        for r in &t.foot {
            out.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                cell(out, "td", c, num(i));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tfoot>");
    }
    out.push_str("</table>\n");
}

fn blocks(out: &mut String, bs: &[Block], ids: &mut Ids) {
    for b in bs {
        match b {
            Block::Heading(level, text) => {
                let l = (*level).clamp(1, 6);
                let id = ids.slug(text);
                let _ = writeln!(out, "<h{l} id=\"{id}\">{}</h{l}>", escape(text));
                if l == 2 {
                    ids.nav.push((id, text.clone()));
                }
            }
            Block::Para(spans) => {
                let _ = writeln!(out, "<p>{}</p>", inline(spans));
            }
            Block::List(items) => {
                out.push_str("<ul>");
                for i in items {
                    let _ = write!(out, "<li>{}</li>", inline(i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => table(out, t),
            Block::Chart(c) => {
                let _ = writeln!(
                    out,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    c.svg,
                    inline(&c.caption)
                );
            }
            Block::Details { summary, body } => {
                let _ = writeln!(out, "<details><summary>{}</summary>", escape(summary));
                blocks(out, body, ids);
                out.push_str("</details>\n");
            }
        }
    }
}

/// The page: a title, links to the level-2 sections, the document.
pub fn render(title: &str, doc: &[Block]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    );
    // The title first, then links to the sections under it.
    let (title_block, rest) = match doc.split_first() {
        Some((h @ Block::Heading(1, _), rest)) => (std::slice::from_ref(h), rest),
        _ => (&[][..], doc),
    };
    let mut ids = Ids::default();
    blocks(&mut out, title_block, &mut ids);
    let mut body = String::new();
    blocks(&mut body, rest, &mut ids);
    if ids.nav.len() > 1 {
        out.push_str("<nav>");
        for (id, text) in &ids.nav {
            let _ = write!(out, "<a href=\"#{id}\">{}</a>", escape(text));
        }
        out.push_str("</nav>\n");
    }
    out.push_str(&body);
    let _ = write!(out, "</main>\n<script>\n{CHECK}\n</script>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut t = Table::new(vec!["case".into(), "n".into()]);
        t.rows.push(vec![Cell::code("a::<b>"), Cell::text("3").tone(Tone::Bad)]);
        let doc = [
            Block::heading(1, "R & D"),
            Block::heading(2, "One"),
            Block::Table(t),
            Block::heading(2, "One"),
            Block::Details {
                summary: "x<y".into(),
                body: vec![Block::para("it's")],
            },
        ];
        let page = render("R & D", &doc);
        assert!(page.contains("<title>R &amp; D</title>"), "{page}");
        assert!(page.contains("<code>a::&lt;b&gt;</code>"), "{page}");
        assert!(page.contains("<td class=\"num bad\">3</td>"), "{page}");
        assert!(
            page.contains("<summary>x&lt;y</summary>") && page.contains("it&#39;s"),
            "{page}"
        );
        // Two headings of one name get two ids, and the navigation links both.
        assert!(
            page.contains("<h2 id=\"one\">") && page.contains("<h2 id=\"one-2\">"),
            "{page}"
        );
        assert!(
            page.contains("<nav><a href=\"#one\">One</a><a href=\"#one-2\">One</a></nav>"),
            "{page}"
        );
        assert!(page.contains("default-src 'none'") && page.contains("report-check: ok "));
        assert!(!page.contains("://"), "{page}");
        // The navigation sits right under the title.
        let h1 = page.find("<h1").unwrap();
        assert!(h1 < page.find("<nav>").unwrap() && page.find("<nav>").unwrap() < page.find("<h2").unwrap());
    }
}

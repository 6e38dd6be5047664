//! The results as an SVG of horizontal bar panels (plain SVG text, so the
//! README can show it and no plotting stack is needed).

use std::fmt::Write as _;

pub struct Panel {
    pub title: String,
    pub bars: Vec<(String, f64)>,
}

pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
}

const WIDTH: f64 = 900.0;
const LABEL: f64 = 230.0;
const BAR: f64 = 22.0;
const GAP: f64 = 6.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn human(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn render(chart: &Chart) -> String {
    let height: f64 = 50.0 + chart.panels.iter().map(|p| 40.0 + p.bars.len() as f64 * (BAR + GAP)).sum::<f64>();
    let mut svg = String::new();
    let _ = writeln!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13">"#);
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="10" y="25" font-size="15" font-weight="bold">{}</text>"#, escape(&chart.title));
    let mut y = 50.0;
    let colors = ["#4c78a8", "#f58518", "#54a24b", "#b279a2"];
    for (i, panel) in chart.panels.iter().enumerate() {
        let _ = writeln!(svg, r#"<text x="10" y="{}" font-weight="bold">{}</text>"#, y + 15.0, escape(&panel.title));
        y += 28.0;
        let max = panel.bars.iter().map(|b| b.1).filter(|v| v.is_finite()).fold(0.0, f64::max).max(1e-9);
        for (label, value) in &panel.bars {
            let w = if value.is_finite() { (WIDTH - LABEL - 90.0) * value / max } else { 0.0 };
            let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, LABEL - 8.0, y + BAR * 0.7, escape(label));
            let _ = writeln!(svg, r#"<rect x="{LABEL}" y="{y}" width="{w:.1}" height="{BAR}" fill="{}"/>"#, colors[i % colors.len()]);
            let _ = writeln!(svg, r#"<text x="{}" y="{}">{}</text>"#, LABEL + w + 6.0, y + BAR * 0.7, human(*value));
            y += BAR + GAP;
        }
        y += 12.0;
    }
    svg.push_str("</svg>\n");
    svg
}

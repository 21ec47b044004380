//! Charts drawn on the server as inline SVG: no script, no external resource, readable by a
//! screen reader through their titles and the table each one summarises.

use crate::html::esc;
use std::fmt::Write as _;

/// One line of a time chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<i64>,
}

const W: f64 = 900.0;
const H: f64 = 240.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// A line chart of `series` over `labels` (one label per point; a few are printed).
pub fn lines(title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let n = labels.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    let y = |v: i64| TOP + plot_h * (1.0 - v as f64 / max as f64);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    for step in 0..=4 {
        let v = max * step / 4;
        let yy = y(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e7ee\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6475\">{v}</text>",
            W - 10.0,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let every = (n / 8).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6475\">{}</text>",
            x(i),
            H - 8.0,
            esc(label)
        );
    }
    for s in series {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            esc(s.colour),
            points.join(" "),
            esc(s.name)
        );
    }
    let mut lx = LEFT + 8.0;
    for s in series {
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{TOP}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\" fill=\"#1d2330\">{}</text>",
            esc(s.colour),
            lx + 14.0,
            TOP + 9.0,
            esc(s.name)
        );
        lx += 30.0 + 7.0 * s.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one per `(label, value)`.
pub fn bars(title: &str, rows: &[(String, i64)], colour: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}: nothing yet.</p>", esc(title));
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let row_h = 22.0;
    let h = row_h * rows.len() as f64 + 8.0;
    let label_w = 190.0;
    let bar_w = 420.0 - label_w - 60.0;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 420 {h}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let yy = 4.0 + row_h * i as f64;
        let w = bar_w * *v as f64 / max as f64;
        let shown: String = label.chars().take(28).collect();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2330\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {v}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2330\">{v}</text>",
            label_w - 6.0,
            yy + 15.0,
            esc(&shown),
            yy + 3.0,
            row_h - 6.0,
            esc(colour),
            esc(label),
            label_w + w + 5.0,
            yy + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
}

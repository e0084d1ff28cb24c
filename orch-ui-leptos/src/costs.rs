//! The costs view's data: `GET /api/costs` (totals by agent, model, workflow, graph and day) and
//! `GET /api/budgets` (today's and this month's spending against their limits), read defensively.

use serde_json::Value;

/// One line of a cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// What it is the cost of (an agent, a model, a day, …).
    pub key: String,
    /// USD.
    pub cost: f64,
    /// Model calls.
    pub calls: u64,
    /// Input and output tokens.
    pub tokens: (u64, u64),
}

fn line(key: &str, v: &Value) -> Line {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let name = v.get("name").and_then(Value::as_str);
    Line {
        key: name.map_or_else(|| key.to_string(), |n| format!("{n} ({})", key.chars().take(8).collect::<String>())),
        cost: v.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        calls: n("calls"),
        tokens: (n("input_tokens"), n("output_tokens")),
    }
}

/// The lines of the table `by` (`by_agent`, `by_model`, `by_workflow`, `by_graph`), the costliest
/// first; `by_day` in date order.
pub fn table(costs: &Value, by: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = costs
        .get(by)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| line(k, v)).collect())
        .unwrap_or_default();
    if by == "by_day" {
        lines.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        lines.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(a.key.cmp(&b.key)));
    }
    lines
}

/// The total line.
pub fn total(costs: &Value) -> Line {
    costs.get("total").map(|t| line("total", t)).unwrap_or(Line {
        key: "total".into(),
        cost: 0.0,
        calls: 0,
        tokens: (0, 0),
    })
}

/// A budget: spent, and the limit when there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Spent in the period.
    pub spent: f64,
    /// The limit, if set.
    pub limit: Option<f64>,
}

/// `daily` or `monthly` of `GET /api/budgets` (`{"spent_usd"|"spent", "limit_usd"|"limit"}`).
pub fn budget(budgets: &Value, period: &str) -> Option<Budget> {
    let b = budgets.get(period)?;
    let num = |keys: [&str; 2]| keys.iter().find_map(|k| b.get(*k).and_then(Value::as_f64));
    Some(Budget { spent: num(["spent_usd", "spent"]).unwrap_or(0.0), limit: num(["limit_usd", "limit"]) })
}

/// Heights of an SVG bar chart (0–`height`) for `values`, scaled to the largest.
pub fn bars(values: &[f64], height: f64) -> Vec<f64> {
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    values.iter().map(|v| if max > 0.0 && v.is_finite() { (v / max * height).max(0.0) } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_sort_by_cost_and_days_by_date() {
        let v = json!({
            "total": {"cost_usd": 1.5, "calls": 4, "input_tokens": 100, "output_tokens": 10},
            "by_agent": {"alice": {"cost_usd": 0.5, "calls": 1}, "bob": {"cost_usd": 1.0, "calls": 3}, "bad": 7},
            "by_graph": {"0123456789abcdef": {"cost_usd": 2.0, "name": "release"}},
            "by_day": {"2026-12-03": {"cost_usd": 1.0}, "2026-12-01": {"cost_usd": 0.5}}
        });
        let agents: Vec<String> = table(&v, "by_agent").into_iter().map(|l| l.key).collect();
        assert_eq!(agents, ["bob", "alice", "bad"]);
        assert_eq!(table(&v, "by_graph")[0].key, "release (01234567)");
        assert_eq!(table(&v, "by_day")[0].key, "2026-12-01");
        assert!(table(&v, "by_model").is_empty());
        assert_eq!(total(&v).calls, 4);
        assert_eq!(total(&json!({})).cost, 0.0);
    }

    #[test]
    fn budgets_and_bars() {
        let b =
            json!({"daily": {"spent_usd": 2.0, "limit_usd": 10.0}, "monthly": {"spent_usd": 3.0, "limit_usd": null}});
        assert_eq!(budget(&b, "daily"), Some(Budget { spent: 2.0, limit: Some(10.0) }));
        assert_eq!(budget(&b, "monthly"), Some(Budget { spent: 3.0, limit: None }));
        assert_eq!(budget(&b, "weekly"), None);
        assert_eq!(bars(&[1.0, 2.0, 0.0], 100.0), [50.0, 100.0, 0.0]);
        assert_eq!(bars(&[0.0, f64::NAN], 10.0), [0.0, 0.0]);
    }
}

//! `EXPLAIN (ANALYZE, BUFFERS)` of each combination's first page: which
//! index serves it, what it read, and that no plan scans the table or
//! sorts.

use chatdesk_domain::ids::SiteId;
use diesel::pg::PgConnection;
use serde_json::Value;

use crate::measure::Target;
use crate::Result;

/// The plan nodes that must not appear.
const FORBIDDEN: [&str; 3] = ["Seq Scan", "Sort", "Incremental Sort"];

struct Node {
    kind: String,
    index: Option<String>,
    relation: Option<String>,
}

fn nodes(plan: &Value, out: &mut Vec<Node>) {
    out.push(Node {
        kind: plan["Node Type"].as_str().unwrap_or_default().to_string(),
        index: plan["Index Name"].as_str().map(str::to_string),
        relation: plan["Relation Name"].as_str().map(str::to_string),
    });
    if let Some(children) = plan["Plans"].as_array() {
        for child in children {
            nodes(child, out);
        }
    }
}

/// Prints a table of the first pages' plans (and the full text plans
/// after it); returns the combinations whose plan broke the rule.
pub(crate) fn explain(
    targets: &[Target<'_>],
    conn: &mut PgConnection,
    _site: SiteId,
) -> Result<Vec<String>> {
    println!(
        "| combination | index made for it | chat_sessions read by | shared hit / read | rows | ms | verdict |"
    );
    println!("|---|---|---|---:|---:|---:|---|");
    let mut broken = Vec::new();
    let mut texts = Vec::new();
    for t in targets {
        let bounds = t.first_bounds();
        // Once to warm the cache as the measured pages were, then kept.
        t.combo.explain(conn, bounds, "FORMAT JSON")?;
        let json = t.combo.explain(conn, bounds, "FORMAT JSON")?.join("\n");
        let doc: Value = serde_json::from_str(&json)?;
        let top = &doc[0];
        let plan = &top["Plan"];
        let mut all = Vec::new();
        nodes(plan, &mut all);
        let sessions: Vec<&Node> = all
            .iter()
            .filter(|n| n.relation.as_deref() == Some("chat_sessions"))
            .collect();
        let read_by = sessions
            .iter()
            .map(|n| match &n.index {
                Some(index) => format!("{} on {index}", n.kind),
                None => n.kind.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let forbidden: Vec<&str> = all
            .iter()
            .filter(|n| FORBIDDEN.contains(&n.kind.as_str()))
            .map(|n| n.kind.as_str())
            .collect();
        let own_index = sessions.len() == 1
            && sessions[0].index.as_deref() == Some(t.combo.index)
            && sessions[0].kind.starts_with("Index");
        let verdict = match (forbidden.is_empty(), own_index) {
            (true, true) => "its index, no sort".to_string(),
            (true, false) => "another index, no sort".to_string(),
            (false, _) => format!("BAD: {}", forbidden.join(", ")),
        };
        if !forbidden.is_empty() || sessions.iter().any(|n| n.index.is_none()) {
            broken.push(format!(
                "{}: {read_by}; {}",
                t.combo.label,
                forbidden.join(", ")
            ));
        }
        println!(
            "| `{}` | {} | {} | {} / {} | {} | {:.3} | {} |",
            t.combo.label,
            t.combo.index,
            read_by,
            plan["Shared Hit Blocks"],
            plan["Shared Read Blocks"],
            plan["Actual Rows"],
            top["Execution Time"].as_f64().unwrap_or(f64::NAN),
            verdict,
        );
        texts.push((
            t.combo.label.clone(),
            t.combo.explain(conn, bounds, "COSTS OFF, TIMING ON")?,
        ));
    }
    println!();
    println!("The plans (first page, EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)):");
    for (label, lines) in texts {
        println!();
        println!("-- {label}");
        for line in lines {
            println!("{line}");
        }
    }
    Ok(broken)
}

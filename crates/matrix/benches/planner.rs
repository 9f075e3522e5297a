//! The pure reconcile planner at 10,000 and 100,000 synthetic rooms (issue 8, point 4).
//! Two cases per size: the cache lost (every row restored) and the cache intact (nothing to do).
//! `cargo bench -p lambda-matrix --bench planner`; prints the median and range of 5 runs.

use lambda_matrix::markers::{ChatMarker, DmRecord, SpaceMarker};
use lambda_matrix::reconcile::plan::plan;
use lambda_matrix::reconcile::snapshot::{Read, ServerRoom};
use lambda_matrix_core::{CacheDump, ChatId, SqliteStore, Store};
use std::io::Write;
use std::time::Instant;

/// Rooms per person: a direct chat, a Space, four chat rooms.
const ROOMS_PER_PERSON: usize = 6;
const RUNS: usize = 5;

fn world(rooms: usize) -> Vec<ServerRoom> {
    let mut server = Vec::with_capacity(rooms);
    for p in 0..rooms / ROOMS_PER_PERSON {
        let owner = format!("@p{p}:example.org");
        let space = format!("!space{p}:example.org");
        let members = vec![owner.clone()];
        server.push(ServerRoom {
            room_id: format!("!dm{p}:example.org"),
            dm_record: Some(Read::Trusted(DmRecord {
                owner: owner.clone(),
                version: 1,
            })),
            members: members.clone(),
            ..ServerRoom::default()
        });
        let chats: Vec<String> = (1..=4).map(|n| format!("!c{p}x{n}:example.org")).collect();
        server.push(ServerRoom {
            room_id: space.clone(),
            is_space: true,
            name: Some("Lambda".into()),
            space_marker: Some(Read::Trusted(SpaceMarker {
                owner: owner.clone(),
                last_chat_index: 4,
                version: 1,
            })),
            children: chats.clone(),
            members: members.clone(),
            ..ServerRoom::default()
        });
        for (n, room_id) in chats.into_iter().enumerate() {
            server.push(ServerRoom {
                room_id,
                name: Some(format!("Chat {}", n + 1)),
                chat_marker: Some(Read::Trusted(ChatMarker {
                    owner: owner.clone(),
                    chat_id: format!("C{}", n + 1),
                    status: "active".into(),
                    cause: format!("$cause{p}x{n}"),
                    version: 1,
                })),
                members: members.clone(),
                ..ServerRoom::default()
            });
        }
    }
    server
}

fn name(id: ChatId) -> String {
    format!("Chat {}", id.number())
}

fn time(server: &[ServerRoom], cache: &CacheDump) -> (Vec<f64>, usize) {
    let mut times = Vec::new();
    let mut changes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let planned = plan(server, cache, &name);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        changes = planned.changes.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times, changes)
}

fn main() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| rooms | cache | median (ms) | range (ms) | changes planned |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for rooms in [10_000, 100_000] {
        let server = world(rooms);
        let (lost, changes) = time(&server, &CacheDump::default());
        // The intact cache: what applying the plan to an empty cache produces.
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path().join("cache.db"))?;
        store.apply(&plan(&server, &CacheDump::default(), &name).changes)?;
        let (intact, none) = time(&server, &store.dump()?);
        for (case, times, changes) in [("lost", lost, changes), ("intact", intact, none)] {
            writeln!(
                out,
                "| {} | {case} | {:.0} | {:.0}–{:.0} | {changes} |",
                server.len(),
                times[RUNS / 2],
                times[0],
                times[RUNS - 1]
            )?;
        }
    }
    Ok(())
}

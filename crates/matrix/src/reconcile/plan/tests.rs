use super::*;
use crate::markers::{ChatMarker, DmRecord, SpaceMarker, VERSION};
use proptest::prelude::*;

fn name_of(id: ChatId) -> String {
    format!("Chat {}", id.number())
}

fn cid(n: u32) -> ChatId {
    ChatId::new(n).expect("id")
}

/// A generated world: the server snapshot and, independently, the cache it must produce.
#[derive(Clone, Debug, Default)]
struct World {
    server: Vec<ServerRoom>,
    expected: CacheDump,
    /// Rooms the planner must skip (anomalies), sorted.
    skipped: Vec<String>,
    /// Marker writes resume must do (adoptions), sorted by room.
    adoptions: Vec<(String, ChatId)>,
}

#[derive(Clone, Debug)]
struct PersonSpec {
    chats: Vec<(bool, bool)>, // (archived, renamed) per chat C1..Cn
    lost_newest: bool,        // last_chat_index is one past the last room (a room was lost)
    anomaly: u8, // 0 none, 1 forged marker room, 2 duplicate id, 3 second space, 4 unknown version, 5 adoptable, 6 unplaceable
}

fn build(people: &[PersonSpec]) -> World {
    let mut w = World::default();
    for (p, spec) in people.iter().enumerate() {
        add_person(&mut w, p, spec);
    }
    w.expected.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    w.expected.rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    w.expected
        .chats
        .sort_by(|a, b| (a.owner.as_str(), a.id).cmp(&(b.owner.as_str(), b.id)));
    w.skipped.sort();
    w.adoptions.sort();
    w
}

/// Person `p`: their chat rooms, an anomaly, their Space and direct chat, and their row.
fn add_person(w: &mut World, p: usize, spec: &PersonSpec) {
    let owner = format!("@p{p}:x");
    let n = spec.chats.len() as u32;
    let last = n + u32::from(spec.lost_newest);
    let mut children = add_chats(w, p, &owner, &spec.chats);
    let adopted = add_anomaly(w, p, &owner, spec.anomaly, n, last, &mut children);
    let space_id = add_space(w, p, &owner, last, children);
    let dm_id = add_dm(w, p, &owner);
    w.expected.users.push(UserRecord {
        user_id: owner,
        space_id: Some(space_id),
        dm_room_id: Some(dm_id),
        next_chat_index: adopted.unwrap_or(n).max(last) + 1,
    });
}

/// A room whose only member (besides the bot) is `owner`, nothing else set.
fn owned_room(room_id: String, owner: &str) -> ServerRoom {
    ServerRoom {
        room_id,
        members: vec![owner.to_owned()],
        ..ServerRoom::default()
    }
}

/// The room and chat rows a placed chat room must give.
fn expect_chat(
    w: &mut World,
    owner: &str,
    id: ChatId,
    name: String,
    status: ChatStatus,
    room_id: &str,
) {
    w.expected.rooms.push(RoomRecord {
        room_id: room_id.to_owned(),
        owner: owner.to_owned(),
        kind: RoomKind::Chat,
        chat_id: Some(id),
    });
    w.expected.chats.push(Chat {
        owner: owner.to_owned(),
        id,
        name,
        status,
        room_id: room_id.to_owned(),
    });
}

/// C1..Cn as `chats` says (archived, renamed); returns the active ones, which the Space links.
fn add_chats(w: &mut World, p: usize, owner: &str, chats: &[(bool, bool)]) -> Vec<String> {
    let mut children = Vec::new();
    for (i, (archived, renamed)) in chats.iter().enumerate() {
        let id = cid(i as u32 + 1);
        let room_id = format!("!c{p:05}-{:03}", i + 1);
        let status = if *archived {
            ChatStatus::Archived
        } else {
            ChatStatus::Active
        };
        if !archived {
            children.push(room_id.clone());
        }
        let name = if *renamed {
            format!("Topic {p}/{i} — «x»")
        } else {
            name_of(id)
        };
        w.server.push(ServerRoom {
            name: Some(name.clone()),
            chat_marker: Some(Read::Trusted(ChatMarker {
                owner: owner.to_owned(),
                chat_id: id.to_string(),
                status: status.as_str().into(),
                cause: "$c".into(),
                version: VERSION,
            })),
            ..owned_room(room_id.clone(), owner)
        });
        expect_chat(w, owner, id, name, status, &room_id);
    }
    children
}

/// The person's anomaly (`PersonSpec::anomaly`), with `n` chats and `last` issued. Every one but
/// the adoptable room is skipped; that one's number is returned.
fn add_anomaly(
    w: &mut World,
    p: usize,
    owner: &str,
    anomaly: u8,
    n: u32,
    last: u32,
    children: &mut Vec<String>,
) -> Option<u32> {
    let skipped = match anomaly {
        // A room whose marker the person forged: not ours.
        1 => ServerRoom {
            chat_marker: Some(Read::Rejected(format!("sent by {owner}, not by the bot"))),
            ..owned_room(format!("!f{p:05}"), owner)
        },
        // A second, unlinked room claiming C1: the linked one (or smaller id) wins. C1 is
        // linked unless archived; if archived neither is linked and the smaller id (the
        // original "!c...") wins too.
        2 if n > 0 => ServerRoom {
            name: Some("dup".into()),
            chat_marker: Some(Read::Trusted(ChatMarker::new(owner, cid(1), "$dup"))),
            ..owned_room(format!("!z{p:05}"), owner)
        },
        3 => ServerRoom {
            is_space: true,
            space_marker: Some(Read::Trusted(SpaceMarker {
                owner: owner.to_owned(),
                last_chat_index: 0,
                version: VERSION,
            })),
            ..owned_room(format!("!t{p:05}"), owner)
        },
        4 => ServerRoom {
            chat_marker: Some(Read::Rejected("unknown record version 2".into())),
            ..owned_room(format!("!v{p:05}"), owner)
        },
        5 => return Some(add_adoptable(w, p, owner, last, children)),
        // Linked from the Space but a stranger is in it: not adopted.
        6 => {
            let room_id = format!("!w{p:05}");
            children.push(room_id.clone());
            ServerRoom {
                members: vec![owner.to_owned(), "@stranger:y".into()],
                ..owned_room(room_id, owner)
            }
        }
        _ => return None,
    };
    w.skipped.push(skipped.room_id.clone());
    w.server.push(skipped);
    None
}

/// An unmarked room linked from the Space, the owner its only member: adopted as the id after
/// `last`, which is returned.
fn add_adoptable(
    w: &mut World,
    p: usize,
    owner: &str,
    last: u32,
    children: &mut Vec<String>,
) -> u32 {
    let room_id = format!("!u{p:05}");
    children.push(room_id.clone());
    let id = cid(last + 1);
    w.server.push(ServerRoom {
        name: Some("Old chat".into()),
        ..owned_room(room_id.clone(), owner)
    });
    expect_chat(
        w,
        owner,
        id,
        "Old chat".into(),
        ChatStatus::Active,
        &room_id,
    );
    w.adoptions.push((room_id, id));
    last + 1
}

/// The person's Space, linking `children`, with `last` issued; returns its id.
fn add_space(w: &mut World, p: usize, owner: &str, last: u32, children: Vec<String>) -> String {
    let space_id = format!("!s{p:05}");
    w.server.push(ServerRoom {
        is_space: true,
        name: Some("Lambda".into()),
        space_marker: Some(Read::Trusted(SpaceMarker {
            owner: owner.to_owned(),
            last_chat_index: last,
            version: VERSION,
        })),
        children,
        ..owned_room(space_id.clone(), owner)
    });
    w.expected.rooms.push(RoomRecord {
        room_id: space_id.clone(),
        owner: owner.to_owned(),
        kind: RoomKind::Space,
        chat_id: None,
    });
    space_id
}

/// The person's direct chat; returns its id.
fn add_dm(w: &mut World, p: usize, owner: &str) -> String {
    let dm_id = format!("!d{p:05}");
    w.server.push(ServerRoom {
        dm_record: Some(Read::Trusted(DmRecord {
            owner: owner.to_owned(),
            version: VERSION,
        })),
        ..owned_room(dm_id.clone(), owner)
    });
    w.expected.rooms.push(RoomRecord {
        room_id: dm_id.clone(),
        owner: owner.to_owned(),
        kind: RoomKind::Dm,
        chat_id: None,
    });
    dm_id
}

/// Applies changes to an in-memory cache, as the store would.
fn apply(dump: &CacheDump, changes: &[Change]) -> CacheDump {
    let mut users: BTreeMap<String, UserRecord> = dump
        .users
        .iter()
        .map(|u| (u.user_id.clone(), u.clone()))
        .collect();
    let mut rooms: BTreeMap<String, RoomRecord> = dump
        .rooms
        .iter()
        .map(|r| (r.room_id.clone(), r.clone()))
        .collect();
    let mut chats: BTreeMap<(String, ChatId), Chat> = dump
        .chats
        .iter()
        .map(|c| ((c.owner.clone(), c.id), c.clone()))
        .collect();
    for change in changes {
        match change {
            Change::PutUser(u) => drop(users.insert(u.user_id.clone(), u.clone())),
            Change::PutRoom(r) => drop(rooms.insert(r.room_id.clone(), r.clone())),
            Change::PutChat(c) => drop(chats.insert((c.owner.clone(), c.id), c.clone())),
            Change::DeleteUser(id) => drop(users.remove(id)),
            Change::DeleteRoom(id) => drop(rooms.remove(id)),
            Change::DeleteChat { owner, id } => drop(chats.remove(&(owner.clone(), *id))),
        }
    }
    CacheDump {
        users: users.into_values().collect(),
        rooms: rooms.into_values().collect(),
        chats: chats.into_values().collect(),
    }
}

/// Damage done to a cache: each variant is something a crash or lost file leaves behind.
#[derive(Clone, Debug)]
enum Damage {
    DropUser(usize),
    DropRoom(usize),
    DropChat(usize),
    LowerCounter(usize),
    WrongRoom(usize),
    Rename(usize),
    StaleRow,
}

fn damage(dump: &CacheDump, damages: &[Damage]) -> CacheDump {
    let mut d = dump.clone();
    for damage in damages {
        match damage {
            Damage::DropUser(i) if !d.users.is_empty() => drop(d.users.remove(i % d.users.len())),
            Damage::DropRoom(i) if !d.rooms.is_empty() => drop(d.rooms.remove(i % d.rooms.len())),
            Damage::DropChat(i) if !d.chats.is_empty() => drop(d.chats.remove(i % d.chats.len())),
            Damage::LowerCounter(i) if !d.users.is_empty() => {
                let n = d.users.len();
                d.users[i % n].next_chat_index = 1;
            }
            Damage::WrongRoom(i) if !d.chats.is_empty() => {
                let n = d.chats.len();
                d.chats[i % n].room_id = "!wrong".into();
            }
            Damage::Rename(i) if !d.chats.is_empty() => {
                let n = d.chats.len();
                d.chats[i % n].name = "stale name".into();
            }
            Damage::StaleRow => d.rooms.push(RoomRecord {
                room_id: "!gone".into(),
                owner: "@p0:x".into(),
                kind: RoomKind::Dm,
                chat_id: None,
            }),
            _ => {}
        }
    }
    d
}

/// `room` as reconcile reads it from the store: only the records [`next_read`] asks for.
fn as_read(room: &ServerRoom) -> ServerRoom {
    let mut read = ServerRoom {
        room_id: room.room_id.clone(),
        is_space: room.is_space,
        name: room.name.clone(),
        leaving: room.leaving,
        unreadable: room.unreadable.clone(),
        ..ServerRoom::default()
    };
    let mut done = Vec::new();
    while let Some(record) = next_read(&read, &done) {
        match record {
            Record::SpaceMarker => read.space_marker = room.space_marker.clone(),
            Record::ChatMarker => read.chat_marker = room.chat_marker.clone(),
            Record::DmRecord => read.dm_record = room.dm_record.clone(),
            Record::Children => read.children = room.children.clone(),
            Record::Members => read.members = room.members.clone(),
        }
        assert!(!done.contains(&record), "{record:?} asked for twice");
        done.push(record);
    }
    read
}

fn check(world: &World, cache: &CacheDump) -> Result<(), TestCaseError> {
    let first = plan(&world.server, cache, &name_of);
    let as_read: Vec<ServerRoom> = world.server.iter().map(as_read).collect();
    prop_assert_eq!(
        &plan(&as_read, cache, &name_of),
        &first,
        "the rooms as reconcile reads them must plan as the rooms in full"
    );
    prop_assert_eq!(&first.desired, &world.expected);
    let repaired = apply(cache, &first.changes);
    prop_assert_eq!(&repaired, &world.expected);
    let skipped: Vec<String> = first
        .report
        .skipped_rooms
        .iter()
        .map(|s| s.room_id.clone())
        .collect();
    prop_assert_eq!(&skipped, &world.skipped);
    let mut adoptions: Vec<(String, ChatId)> = first
        .resume
        .iter()
        .filter_map(|t| match t {
            ResumeTask::WriteChatMarker {
                room_id, chat_id, ..
            } => Some((room_id.clone(), *chat_id)),
            _ => None,
        })
        .collect();
    adoptions.sort();
    prop_assert_eq!(&adoptions, &world.adoptions);
    let second = plan(&world.server, &repaired, &name_of);
    prop_assert!(
        second.changes.is_empty() && second.report.is_clean(),
        "second pass must change nothing: {:?}",
        second.changes
    );
    Ok(())
}

fn person() -> impl Strategy<Value = PersonSpec> {
    (
        proptest::collection::vec((any::<bool>(), any::<bool>()), 1..6),
        any::<bool>(),
        0u8..8,
    )
        .prop_map(|(chats, lost_newest, anomaly)| PersonSpec {
            chats,
            lost_newest,
            anomaly,
        })
}

fn damages() -> impl Strategy<Value = Vec<Damage>> {
    proptest::collection::vec(
        prop_oneof![
            any::<usize>().prop_map(Damage::DropUser),
            any::<usize>().prop_map(Damage::DropRoom),
            any::<usize>().prop_map(Damage::DropChat),
            any::<usize>().prop_map(Damage::LowerCounter),
            any::<usize>().prop_map(Damage::WrongRoom),
            any::<usize>().prop_map(Damage::Rename),
            Just(Damage::StaleRow),
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn restores_the_cache_the_server_implies(people in proptest::collection::vec(person(), 1..30), damage_list in damages(), whole_loss in any::<bool>()) {
        let world = build(&people);
        let cache = if whole_loss { CacheDump::default() } else { damage(&world.expected, &damage_list) };
        check(&world, &cache)?;
    }
}

#[test]
fn ten_thousand_rooms_with_every_anomaly() {
    // 2,000 people x (Space + DM + 3 chats), anomalies cycling: about 10,000 rooms.
    let people: Vec<PersonSpec> = (0..2000)
        .map(|i| PersonSpec {
            chats: vec![(i % 3 == 0, i % 2 == 0), (false, false), (i % 5 == 0, true)],
            lost_newest: i % 4 == 0,
            anomaly: (i % 8) as u8,
        })
        .collect();
    let world = build(&people);
    assert!(world.server.len() >= 10_000, "{} rooms", world.server.len());
    check(&world, &CacheDump::default()).expect("whole loss restored");
    let damaged = damage(
        &world.expected,
        &[
            Damage::DropChat(7),
            Damage::WrongRoom(99),
            Damage::LowerCounter(5),
            Damage::StaleRow,
            Damage::Rename(3),
        ],
    );
    check(&world, &damaged).expect("partial loss repaired");
}

#[test]
fn counts_are_exact_for_what_was_removed() {
    let world = build(&[PersonSpec {
        chats: vec![(false, false), (true, true)],
        lost_newest: false,
        anomaly: 0,
    }]);
    let full = plan(&world.server, &CacheDump::default(), &name_of);
    assert_eq!(
        (
            full.report.restored_user_meta,
            full.report.restored_room_meta,
            full.report.restored_chat_rows
        ),
        (1, 4, 2)
    );
    assert_eq!(full.report.repaired, 0);

    let mut partial = world.expected.clone();
    partial.chats.remove(0);
    partial.users[0].next_chat_index = 1;
    partial.chats[0].room_id = "!wrong".into();
    let report = plan(&world.server, &partial, &name_of).report;
    assert_eq!(report.restored_chat_rows, 1);
    assert_eq!(
        report.repaired, 2,
        "stale counter and a chat bound to the wrong room"
    );
    assert_eq!(report.joined_rooms, 4);
}

#[test]
fn resume_links_unlinked_active_chats_and_gives_an_empty_space_its_c1() {
    let owner = "@anna:x".to_owned();
    let server = vec![
        ServerRoom {
            room_id: "!space".into(),
            is_space: true,
            space_marker: Some(Read::Trusted(SpaceMarker {
                owner: owner.clone(),
                last_chat_index: 1,
                version: VERSION,
            })),
            ..ServerRoom::default()
        },
        ServerRoom {
            room_id: "!space2-owner-b".into(),
            is_space: true,
            space_marker: Some(Read::Trusted(SpaceMarker {
                owner: "@boris:x".into(),
                last_chat_index: 0,
                version: VERSION,
            })),
            ..ServerRoom::default()
        },
        ServerRoom {
            room_id: "!c1".into(),
            chat_marker: Some(Read::Trusted(ChatMarker::new(&owner, cid(1), "$x"))),
            members: vec![owner.clone()],
            ..ServerRoom::default()
        },
    ];
    let plan = plan(&server, &CacheDump::default(), &name_of);
    assert_eq!(
        plan.resume,
        vec![
            ResumeTask::LinkChild {
                space_id: "!space".into(),
                room_id: "!c1".into()
            },
            ResumeTask::CreateFirstChat {
                owner: "@boris:x".into(),
                space_id: "!space2-owner-b".into()
            },
        ]
    );
    // Boris was never issued an id: C1 is his next.
    let boris = plan
        .desired
        .users
        .iter()
        .find(|u| u.user_id == "@boris:x")
        .expect("boris");
    assert_eq!(boris.next_chat_index, 1);
}

#[test]
fn a_recorded_direct_chat_with_nothing_else_gets_its_first_contact_finished() {
    let dm = |room: &str, owner: &str| ServerRoom {
        room_id: room.into(),
        dm_record: Some(Read::Trusted(DmRecord {
            owner: owner.into(),
            version: VERSION,
        })),
        members: vec![owner.into()],
        ..ServerRoom::default()
    };
    let server = vec![
        // Anna: two direct chats, nothing else (a crash after the record, twice).
        dm("!dm-b", "@anna:x"),
        dm("!dm-a", "@anna:x"),
        // Boris: a direct chat and a Space (C1 to come from the Space's task).
        dm("!dm-boris", "@boris:x"),
        bare_space("@boris:x", 0),
        // Carla: a direct chat and a chat room (her Space out of reach): nothing to finish.
        dm("!dm-carla", "@carla:x"),
        ServerRoom {
            room_id: "!c-carla".into(),
            chat_marker: Some(Read::Trusted(ChatMarker::new("@carla:x", cid(2), "$x"))),
            members: vec!["@carla:x".into()],
            ..ServerRoom::default()
        },
    ];
    let plan = plan(&server, &CacheDump::default(), &name_of);
    let finishing: Vec<(&str, &str)> = plan
        .resume
        .iter()
        .filter_map(|t| match t {
            ResumeTask::FinishFirstContact { owner, room_id } => {
                Some((owner.as_str(), room_id.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        finishing,
        [("@anna:x", "!dm-a")],
        "one per person, the first room"
    );
    assert_eq!(first_chat_tasks(&plan), ["@boris:x"]);
}

/// A Space with no chat room and the given `last_chat_index`.
fn bare_space(owner: &str, last_chat_index: u32) -> ServerRoom {
    ServerRoom {
        room_id: format!("!space-{owner}"),
        is_space: true,
        space_marker: Some(Read::Trusted(SpaceMarker {
            owner: owner.to_owned(),
            last_chat_index,
            version: VERSION,
        })),
        members: vec![owner.to_owned()],
        ..ServerRoom::default()
    }
}

fn first_chat_tasks(plan: &Plan) -> Vec<&str> {
    plan.resume
        .iter()
        .filter_map(|t| match t {
            ResumeTask::CreateFirstChat { owner, .. } => Some(owner.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_space_whose_chats_were_all_deleted_gets_no_new_chat() {
    let server = vec![
        bare_space("@anna:x", 1),
        bare_space("@boris:x", 4),
        bare_space("@never:x", 0),
    ];
    let plan = plan(&server, &CacheDump::default(), &name_of);
    assert_eq!(first_chat_tasks(&plan), vec!["@never:x"]);
    let next: Vec<(&str, u32)> = plan
        .desired
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u.next_chat_index))
        .collect();
    assert_eq!(
        next,
        vec![("@anna:x", 2), ("@boris:x", 5), ("@never:x", 1)],
        "deleted ids are never issued again"
    );
}

#[test]
fn a_chat_being_left_counts_as_issued() {
    // A crash after `!delete C1 confirm` recorded C1 but before the Space marker counted it
    // (C1 is made before its Space marker is raised to 1): C1 stays deleted, C2 is next.
    let owner = "@anna:x";
    let server = vec![
        bare_space(owner, 0),
        ServerRoom {
            room_id: "!c1".into(),
            chat_marker: Some(Read::Trusted(ChatMarker::new(owner, cid(1), "!dm"))),
            members: vec![owner.to_owned()],
            leaving: true,
            ..ServerRoom::default()
        },
    ];
    let plan = plan(&server, &CacheDump::default(), &name_of);
    assert!(first_chat_tasks(&plan).is_empty(), "{:?}", plan.resume);
    assert!(plan.resume.contains(&ResumeTask::Leave {
        room_id: "!c1".into()
    }));
    assert_eq!(plan.desired.users[0].next_chat_index, 2);
    assert!(plan.desired.chats.is_empty());
}

/// Chat room `Cn` of `owner`, its marker trusted, in the leaving record.
fn leaving_chat(owner: &str, n: u32) -> ServerRoom {
    ServerRoom {
        room_id: format!("!c{n}"),
        chat_marker: Some(Read::Trusted(ChatMarker::new(owner, cid(n), "$x"))),
        members: vec![owner.to_owned()],
        leaving: true,
        ..ServerRoom::default()
    }
}

/// The rows the cache holds for `owner`'s chat room `Cn` (`!c<n>`).
fn cached_chat(cache: &mut CacheDump, owner: &str, n: u32) {
    cache.rooms.push(RoomRecord {
        room_id: format!("!c{n}"),
        owner: owner.into(),
        kind: RoomKind::Chat,
        chat_id: Some(cid(n)),
    });
    cache.chats.push(Chat {
        owner: owner.into(),
        id: cid(n),
        name: name_of(cid(n)),
        status: ChatStatus::Active,
        room_id: format!("!c{n}"),
    });
}

fn skips(plan: &Plan) -> Vec<(&str, &str)> {
    plan.report
        .skipped_rooms
        .iter()
        .map(|s| (s.room_id.as_str(), s.reason.as_str()))
        .collect()
}

const BEING_LEFT: &str = "being left (deleted or forgotten by its owner)";

#[test]
fn a_chat_room_being_left_is_skipped_and_left_and_its_id_stays_issued() {
    // A crash in `!delete C2 confirm` after the leaving record and before the rows were dropped;
    // the Space marker counts only C1 (whatever the reason, the room's id is issued).
    let owner = "@anna:x";
    let mut server = vec![
        bare_space(owner, 1),
        ServerRoom {
            room_id: "!c1".into(),
            chat_marker: Some(Read::Trusted(ChatMarker::new(owner, cid(1), "$x"))),
            members: vec![owner.to_owned()],
            ..ServerRoom::default()
        },
        leaving_chat(owner, 2),
    ];
    server[0].children = vec!["!c1".into()];
    let mut cache = CacheDump::default();
    cached_chat(&mut cache, owner, 1);
    cached_chat(&mut cache, owner, 2);
    let planned = plan(&server, &cache, &name_of);

    assert_eq!(skips(&planned), [("!c2", BEING_LEFT)]);
    assert_eq!(
        planned.resume,
        [ResumeTask::Leave {
            room_id: "!c2".into()
        }]
    );
    assert_eq!(
        planned.desired.users[0].next_chat_index, 3,
        "C2 stays issued"
    );
    assert!(planned.desired.rooms.iter().all(|r| r.room_id != "!c2"));
    assert!(planned.desired.chats.iter().all(|c| c.room_id != "!c2"));
    assert!(planned.changes.contains(&Change::DeleteRoom("!c2".into())));
    assert!(planned.changes.contains(&Change::DeleteChat {
        owner: owner.into(),
        id: cid(2)
    }));
    assert!(
        !planned.changes.iter().any(|c| matches!(
            c,
            Change::PutRoom(RoomRecord { room_id, .. }) | Change::PutChat(Chat { room_id, .. })
                if room_id == "!c2"
        )),
        "{:?}",
        planned.changes
    );

    // An unmarked room the Space links is adopted above the id being left, too.
    server[0].children.push("!old".into());
    server.push(ServerRoom {
        room_id: "!old".into(),
        name: Some("Old chat".into()),
        members: vec![owner.to_owned()],
        ..ServerRoom::default()
    });
    let adopted = plan(&server, &cache, &name_of);
    assert!(adopted.resume.contains(&ResumeTask::WriteChatMarker {
        room_id: "!old".into(),
        owner: owner.into(),
        chat_id: cid(3),
    }));
    assert_eq!(adopted.desired.users[0].next_chat_index, 4);
}

#[test]
fn a_space_being_left_is_skipped_and_left_with_every_room_of_its_owner() {
    // A crash in `!forget-me confirm` after the leaving record (every room of the person, the
    // Space last) and before the bot left them.
    let owner = "@anna:x";
    let mut space = bare_space(owner, 2);
    space.room_id = "!space".into();
    space.children = vec!["!c1".into(), "!c2".into()];
    space.leaving = true;
    let server = vec![
        space,
        leaving_chat(owner, 1),
        leaving_chat(owner, 2),
        ServerRoom {
            room_id: "!dm".into(),
            members: vec![owner.to_owned()],
            leaving: true,
            ..ServerRoom::default()
        },
    ];
    let mut cache = CacheDump::default();
    cache.users.push(UserRecord {
        user_id: owner.into(),
        space_id: Some("!space".into()),
        dm_room_id: Some("!dm".into()),
        next_chat_index: 3,
    });
    for (room_id, kind) in [("!space", RoomKind::Space), ("!dm", RoomKind::Dm)] {
        cache.rooms.push(RoomRecord {
            room_id: room_id.into(),
            owner: owner.into(),
            kind,
            chat_id: None,
        });
    }
    cached_chat(&mut cache, owner, 1);
    cached_chat(&mut cache, owner, 2);
    let planned = plan(&server, &cache, &name_of);

    assert_eq!(
        skips(&planned),
        [
            ("!c1", BEING_LEFT),
            ("!c2", BEING_LEFT),
            ("!dm", BEING_LEFT),
            ("!space", BEING_LEFT)
        ]
    );
    let left: Vec<ResumeTask> = ["!c1", "!c2", "!dm", "!space"]
        .map(|room_id| ResumeTask::Leave {
            room_id: room_id.into(),
        })
        .into();
    assert_eq!(planned.resume, left, "no first chat for a Space being left");
    assert_eq!(
        planned.desired,
        CacheDump::default(),
        "no row for any of them"
    );
    assert!(
        planned.changes.iter().all(|c| matches!(
            c,
            Change::DeleteUser(_) | Change::DeleteRoom(_) | Change::DeleteChat { .. }
        )),
        "{:?}",
        planned.changes
    );
    assert_eq!(apply(&cache, &planned.changes), CacheDump::default());
    assert_eq!(
        planned.report.repaired, 7,
        "1 person, 4 rooms, 2 chats removed"
    );
}

#[test]
fn default_names_give_their_number() {
    assert_eq!(default_name_number("Chat 3"), Some(3));
    assert_eq!(default_name_number("Чат 12"), Some(12));
    assert_eq!(default_name_number("Chat 0"), None);
    assert_eq!(default_name_number("Chat three"), None);
    assert_eq!(default_name_number("My Chat 3"), None);
}

#[test]
fn room_names_from_the_server_are_cleaned_like_renames() {
    let owner = "@anna:x";
    let chat = |n: u32, name: Option<String>| ServerRoom {
        room_id: format!("!c{n}"),
        name,
        chat_marker: Some(Read::Trusted(ChatMarker::new(owner, cid(n), "$x"))),
        members: vec![owner.to_owned()],
        ..ServerRoom::default()
    };
    let server = vec![
        bare_space(owner, 5),
        // Control, zero-width and direction characters, runs of whitespace.
        chat(
            1,
            Some("\u{202E}evil\u{200B}  name\u{7}\tgnp.exe\u{2066}".into()),
        ),
        // Nothing visible left.
        chat(2, Some("\u{200B}\u{202E} \u{7}".into())),
        // Longer than a chat name may be.
        chat(3, Some("x".repeat(lambda_matrix_core::MAX_NAME_CHARS + 1))),
        // Markup is a label like any other (escaping it is the notices' job).
        chat(4, Some("[x](https://example.org) **b**".into())),
        // No name: the cache's name stays.
        chat(5, None),
    ];
    let mut cache = CacheDump::default();
    cache.chats.push(Chat {
        owner: owner.into(),
        id: cid(5),
        name: "Kept".into(),
        status: ChatStatus::Active,
        room_id: "!c5".into(),
    });
    let plan = plan(&server, &cache, &name_of);
    let names: Vec<(u32, &str)> = plan
        .desired
        .chats
        .iter()
        .map(|c| (c.id.number(), c.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            (1, "evil name gnp.exe"),
            (2, "Chat 2"),
            (3, "Chat 3"),
            (4, "[x](https://example.org) **b**"),
            (5, "Kept"),
        ]
    );
}

#[test]
fn an_adopted_room_named_with_hidden_characters_keeps_its_number() {
    let owner = "@anna:x";
    let mut space = bare_space(owner, 0);
    space.children = vec!["!old".into()];
    let server = vec![
        space,
        ServerRoom {
            room_id: "!old".into(),
            name: Some("Chat\u{200B} \u{202E}7".into()),
            members: vec![owner.to_owned()],
            ..ServerRoom::default()
        },
    ];
    let plan = plan(&server, &CacheDump::default(), &name_of);
    assert_eq!(plan.desired.chats[0].id, cid(7));
    assert_eq!(plan.desired.chats[0].name, "Chat 7");
}

#[test]
fn rooms_whose_records_cannot_be_read_keep_every_row() {
    let people: Vec<PersonSpec> = (0..3)
        .map(|_| PersonSpec {
            chats: vec![(false, true), (true, false), (false, false)],
            lost_newest: false,
            anomaly: 0,
        })
        .collect();
    let world = build(&people);
    let cache = world.expected.clone();
    // A store read failed for a Space, a chat room and a direct chat: not "no marker".
    let mut server = world.server.clone();
    for room in server
        .iter_mut()
        .filter(|r| r.room_id == "!s00000" || r.room_id == "!c00001-002" || r.room_id == "!d00002")
    {
        room.unreadable = Some("the store failed".into());
    }
    let planned = plan(&server, &cache, &name_of);
    let deletions: Vec<&Change> = planned
        .changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::DeleteUser(_) | Change::DeleteRoom(_) | Change::DeleteChat { .. }
            )
        })
        .collect();
    assert!(deletions.is_empty(), "{deletions:?}");
    assert_eq!(planned.desired, cache, "every row kept as it was");
    let skipped: Vec<&str> = planned
        .report
        .skipped_rooms
        .iter()
        .map(|s| s.room_id.as_str())
        .collect();
    assert_eq!(skipped, ["!c00001-002", "!d00002", "!s00000"]);
    // With the reads working again, the same cache is clean.
    assert!(plan(&world.server, &cache, &name_of).changes.is_empty());
}

#[test]
fn a_repair_of_one_room_only_adds() {
    let people: Vec<PersonSpec> = (0..2)
        .map(|_| PersonSpec {
            chats: vec![(false, false), (false, false)],
            lost_newest: false,
            anomaly: 0,
        })
        .collect();
    let world = build(&people);
    // The cache lost C2 of the first person; a message arrives in that room.
    let mut cache = world.expected.clone();
    cache.rooms.retain(|r| r.room_id != "!c00000-002");
    cache.chats.retain(|c| c.room_id != "!c00000-002");
    // Something only this process knows (a room a command just made) is in the cache too.
    cache.rooms.push(RoomRecord {
        room_id: "!just-made".into(),
        owner: "@p0:x".into(),
        kind: RoomKind::Chat,
        chat_id: Some(cid(3)),
    });
    let one: Vec<ServerRoom> = world
        .server
        .iter()
        .filter(|r| r.room_id == "!c00000-002")
        .cloned()
        .collect();
    let planned = plan(&one, &cache, &name_of);
    assert!(
        planned
            .changes
            .iter()
            .any(|c| matches!(c, Change::DeleteRoom(_))),
        "planning one room alone would delete the others"
    );
    let inserts = inserts_only(&planned.changes, &cache);
    let repaired = apply(&cache, &inserts);
    assert!(
        repaired.rooms.iter().any(|r| r.room_id == "!just-made"),
        "nothing deleted"
    );
    assert!(repaired.rooms.iter().any(|r| r.room_id == "!c00000-002"));
    assert!(repaired.chats.iter().any(|c| c.room_id == "!c00000-002"));
    assert_eq!(repaired.users, cache.users, "people's rows not overwritten");
    assert_eq!(repaired.rooms.len(), cache.rooms.len() + 1);
}

#[test]
fn reading_only_the_records_the_planner_needs_plans_the_same() {
    // Every mix of records one room can carry, in a Space of its owner that links it, with the
    // owner alone or with a stranger, being left or not: the plan of the room read as
    // reconcile reads it (only what `next_read` asks for) is the plan of the room read in full.
    let owner = "@a:x";
    let space_marker = |last| {
        Read::Trusted(SpaceMarker {
            owner: owner.to_owned(),
            last_chat_index: last,
            version: VERSION,
        })
    };
    let spaces = [
        None,
        Some(space_marker(1)),
        Some(Read::Rejected("sent by @a:x, not by the bot".into())),
    ];
    let malformed = ChatMarker {
        chat_id: "C0".into(),
        ..ChatMarker::new(owner, cid(2), "$c")
    };
    let chats = [
        None,
        Some(Read::Trusted(ChatMarker::new(owner, cid(2), "$c"))),
        Some(Read::Trusted(malformed)),
        Some(Read::Rejected("unknown record version 2".into())),
    ];
    let dms = [
        None,
        Some(Read::Trusted(DmRecord {
            owner: owner.to_owned(),
            version: VERSION,
        })),
        Some(Read::Rejected("not JSON".into())),
    ];
    let memberships = [vec![owner.to_owned()], vec![owner.into(), "@b:y".into()]];
    let mut cases = 0;
    let mut fewer_reads = 0;
    for (is_space, leaving) in [(false, false), (true, false), (false, true), (true, true)] {
        for space in &spaces {
            for chat in &chats {
                for dm in &dms {
                    for members in &memberships {
                        let room = ServerRoom {
                            room_id: "!r".into(),
                            is_space,
                            name: Some("Chat 3".into()),
                            space_marker: space.clone(),
                            chat_marker: chat.clone(),
                            dm_record: dm.clone(),
                            children: vec!["!r".into()],
                            members: members.clone(),
                            leaving,
                            ..ServerRoom::default()
                        };
                        let home = ServerRoom {
                            room_id: "!home".into(),
                            is_space: true,
                            space_marker: Some(space_marker(2)),
                            children: vec!["!r".into()],
                            ..owned_room("!home".into(), owner)
                        };
                        let full = vec![home.clone(), room.clone()];
                        let read = vec![as_read(&home), as_read(&room)];
                        if read[1] != room {
                            fewer_reads += 1;
                        }
                        for cache in [
                            CacheDump::default(),
                            plan(&full, &CacheDump::default(), &name_of).desired,
                        ] {
                            assert_eq!(
                                plan(&read, &cache, &name_of),
                                plan(&full, &cache, &name_of),
                                "{room:?}"
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 288);
    // The point of reading less: most mixes need fewer records than all of them.
    assert!(fewer_reads > cases / 2, "{fewer_reads} of {cases}");
}

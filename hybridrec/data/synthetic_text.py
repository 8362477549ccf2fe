"""Topics and readable item text for the synthetic data set.

Each topic has a genre name and its own words: capitalised title words, plural things,
place phrases and adjectives. An item's title, description, genres and tags are all drawn
from its topics, so text encoders see the same topic structure that drives part of the
interactions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One latent topic: a genre name and the words items of the topic are described by."""

    name: str
    title_words: tuple[str, ...]
    things: tuple[str, ...]
    places: tuple[str, ...]
    adjectives: tuple[str, ...]


def _t(name, title, things, places, adjs) -> Topic:
    return Topic(name, tuple(title.split()), tuple(things.split(", ")),
                 tuple(places.split(", ")), tuple(adjs.split()))


TOPICS: tuple[Topic, ...] = (
    _t(
        "Maritime",
        "Harbour Tide Lighthouse Anchor Gull Reef Current Sail Compass Shore Mariner Storm",
        ("lighthouses, fishing boats, sailors, tides, sea shanties, harbour towns, shipwrecks, old"
         " nets"),
        "on a stormy coast, in a quiet harbour town, across the northern sea, on a small island",
        "salty windswept quiet stormy weathered grey",
    ),
    _t(
        "Space",
        "Orbit Nebula Comet Starship Galaxy Eclipse Quasar Lunar Pulsar Cosmos Rocket Satellite",
        ("astronauts, distant planets, space stations, comets, starships, alien signals, black "
         "holes"),
        ("beyond the outer rim, aboard a drifting station, on a frozen moon, at the edge of the "
         "galaxy"),
        "distant silent cosmic weightless luminous vast",
    ),
    _t(
        "Cooking",
        "Kitchen Spice Saffron Bread Oven Harvest Honey Pepper Feast Table Garlic Butter",
        ("family recipes, street food, bakers, spices, cooks, market stalls, sourdough loaves, "
         "stews"),
        "in a busy city kitchen, at a village market, in a farmhouse kitchen, along a spice route",
        "warm fragrant hearty rustic delicious homely",
    ),
    _t(
        "Mystery",
        "Shadow Cipher Alibi Whisper Veil Secret Clue Midnight Witness Locket Riddle Silence",
        ("detectives, missing letters, hidden clues, old secrets, locked rooms, suspects, "
         "anonymous notes"),
        "in a fog-bound city, in an old manor house, on a night train, in a sleepy village",
        "puzzling dark tense clever gripping uncanny",
    ),
    _t(
        "Fantasy",
        "Dragon Rune Crown Sorcerer Ember Citadel Oracle Blade Realm Wyvern Grimoire Throne",
        "dragons, wizards, ancient runes, enchanted forests, lost kingdoms, quests, magic swords",
        ("in a forgotten kingdom, beyond the misty mountains, in an enchanted forest, under a "
         "ruined citadel"),
        "enchanted ancient magical epic mythic wondrous",
    ),
    _t(
        "Romance",
        "Heart Letters Summer Promise Rose Waltz Kiss Sunset Vow Blossom Serenade Darling",
        "first loves, love letters, weddings, second chances, summer flings, old flames",
        ("in a sunlit Italian town, in a small bookshop, on a long summer holiday, in a snowy "
         "village"),
        "tender sweet bittersweet heartfelt charming romantic",
    ),
    _t(
        "Nature",
        "Forest River Fox Meadow Owl Wolf Canopy Fern Valley Heron Moss Wild",
        "foxes, wolves, migrating birds, ancient trees, wild rivers, mountain meadows, beavers",
        "in the northern forests, across open tundra, along a wild river, in a hidden valley",
        "wild untamed green peaceful majestic living",
    ),
    _t(
        "History",
        ("Empire Legion Siege Dynasty Chronicle Frontier Revolution Fortress Banner Treaty "
         "Conquest Emperor"),
        ("emperors, soldiers, lost empires, revolutions, old battlefields, forgotten treaties, "
         "ancient cities"),
        "in ancient Rome, during a long winter war, across the old frontier, in a crumbling empire",
        "historic turbulent forgotten grand brutal sweeping",
    ),
    _t(
        "Technology",
        "Circuit Code Neon Signal Pixel Network Binary Protocol Machine Silicon Algorithm Glitch",
        ("hackers, robots, neural networks, startups, secret algorithms, smart cities, rogue "
         "machines"),
        ("in a neon-lit megacity, inside a vast data centre, in a garage startup, on a hidden "
         "server"),
        "digital futuristic wired restless inventive electric",
    ),
    _t(
        "Music",
        "Rhythm Melody Jazz Encore Chord Ballad Tempo Guitar Anthem Echo Harmony Stage",
        ("jazz musicians, touring bands, old records, guitar solos, concert halls, songwriters, "
         "vinyl shops"),
        ("in smoky late-night clubs, on a summer festival stage, in a basement studio, on a long "
         "tour"),
        "soulful loud rhythmic lively mellow vibrant",
    ),
    _t(
        "Sports",
        "Champion Victory Sprint Goal Marathon Rival Arena Trophy Comeback Underdog Finals Relay",
        "athletes, coaches, underdog teams, marathon runners, final matches, training camps",
        ("in a packed stadium, on a muddy village pitch, at the national finals, on a mountain "
         "trail"),
        "fierce triumphant gritty inspiring fast competitive",
    ),
    _t(
        "Horror",
        "Haunting Crypt Raven Hollow Phantom Bones Grave Curse Nightmare Wraith Asylum Specter",
        "ghosts, haunted houses, old curses, strange noises, abandoned asylums, cursed dolls",
        ("in an abandoned asylum, in a house at the end of the lane, deep in the woods at night, "
         "in a forgotten cemetery"),
        "eerie chilling haunted grim creepy sinister",
    ),
    _t(
        "Travel",
        "Journey Passport Road Voyage Caravan Atlas Postcard Nomad Wanderer Route Station Ferry",
        ("backpackers, night trains, road trips, mountain villages, foreign markets, ferries, old "
         "maps"),
        ("across South America, along the Silk Road, through the Scottish Highlands, around the "
         "Mediterranean"),
        "adventurous sunlit scenic curious far-flung carefree",
    ),
    _t(
        "Comedy",
        "Mishap Chaos Blunder Prank Muddle Caper Fiasco Shenanigans Hijinks Giggle Banana Oddballs",
        ("bumbling neighbours, office pranks, awkward dinners, misunderstandings, eccentric "
         "relatives, runaway pets"),
        ("in a chaotic suburban street, at a disastrous family reunion, in a small-town newsroom, "
         "on a badly planned holiday"),
        "hilarious silly absurd witty cheerful ridiculous",
    ),
)

_PREFIXES = ("Midnight", "Golden", "Silent", "Last", "Hidden", "Broken", "Crimson", "Winter",
             "Little", "Northern", "Lost", "Silver", "Endless", "First", "Distant", "Bright")
_SUFFIXES = ("Chronicles", "Stories", "Diaries", "Tales", "Letters", "Saga", "Files", "Club",
             "Road", "Season", "Years", "Songs", "Affair", "Legacy")
_FORMS = ("story", "tale", "novel", "film", "documentary", "memoir", "series",
          "collection of stories")


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def make_title(rng: random.Random, topic: Topic, other: Topic | None) -> str:
    """A 2-4 word title from the topic's title words, e.g. ``"Midnight Harbour Chronicles"``."""
    w1, w2 = rng.sample(topic.title_words, 2)
    if other is not None and rng.random() < 0.5:
        w2 = rng.choice(other.title_words)
    pattern = rng.randrange(5)
    if pattern == 0:
        return f"The {w1} {rng.choice(_SUFFIXES)}"
    if pattern == 1:
        return f"{rng.choice(_PREFIXES)} {w1}"
    if pattern == 2:
        return f"{rng.choice(_PREFIXES)} {w1} {rng.choice(_SUFFIXES)}"
    if pattern == 3:
        return f"{w1} and {w2}"
    return f"{w1} of the {w2}"


def make_description(rng: random.Random, topic: Topic, other: Topic | None) -> str:
    """One or two English sentences built from the topic's words."""
    t1, t2, t3, t4 = rng.sample(topic.things, 4)
    adj, adj2 = rng.sample(topic.adjectives, 2)
    place, form = rng.choice(topic.places), rng.choice(_FORMS)
    first = rng.choice((
        f"{_a(adj).capitalize()} {form} about {t1} and {t2} {place}.",
        f"{_a(adj).capitalize()} {form} set {place}, where {t1} meet {t2}.",
        f"Set {place}, {_a(adj)} {form} of {t1}, {t2} and {t3}.",
        f"{t1.capitalize()}, {t2} and {t3} {place}: {_a(adj)} {form}.",
    ))
    if other is not None:
        return f"{first} With a touch of {other.name.lower()} and {rng.choice(other.things)}."
    second = rng.choice((
        f"Perfect for fans of {t4}.",
        f"Expect {adj2} moments, {t4} and a surprising ending.",
        f"It is {adj2}, {rng.choice(topic.adjectives)} and hard to put down.",
        "",
    ))
    return f"{first} {second}".strip()


def make_tags(rng: random.Random, topic: Topic, other: Topic | None) -> str:
    """Three to five lowercase topic words, joined by ``", "``."""
    words = rng.sample(topic.things, 2) + rng.sample(topic.adjectives, rng.randint(1, 2))
    if other is not None:
        words.append(rng.choice(other.things))
    return ", ".join(words)


def item_texts(seed: int, primary: list[int], secondary: list[int]) -> dict[str, list[str]]:
    """Title, description, genres and tags of each item (``secondary`` -1 = none).

    Titles are unique: a title drawn twice is drawn again (then numbered, if need be).
    """
    rng = random.Random(seed)
    out: dict[str, list[str]] = {"title": [], "description": [], "genres": [], "tags": []}
    seen: set[str] = set()
    for p, s in zip(primary, secondary):
        topic, other = TOPICS[p], (TOPICS[s] if s >= 0 else None)
        title = make_title(rng, topic, other)
        for _ in range(5):
            if title not in seen:
                break
            title = make_title(rng, topic, other)
        base, k = title, 2
        while title in seen:  # a sequel
            title, k = f"{base} {k}", k + 1
        seen.add(title)
        out["title"].append(title)
        out["description"].append(make_description(rng, topic, other))
        out["genres"].append(topic.name + (f", {other.name}" if other else ""))
        out["tags"].append(make_tags(rng, topic, other))
    return out

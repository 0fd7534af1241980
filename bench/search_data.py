"""Seizures for the search benchmark: `node.domain.samples.random_seizure`
made far more varied (tens of thousands of companies, persons and vessels,
accented names among them, containers of many owners, HS codes across
chapters, sixty countries, the species table, free text with a long tail of
rare words), so that every query shape has common and rare values to ask for.

`Probes` keeps some of the values a build wrote (every `PROBE_EVERY`-th
seizure), so the queries ask for what the store holds; it is saved next to a
kept store (`--reuse`) as JSON.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from stdnum import imo as std_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec
from node.domain import species_names
from node.domain.samples import random_seizure

PROBE_EVERY = 97
# Weighted: the first ones are where most seizures happen or lead.
COUNTRIES = [
    "KE",
    "TZ",
    "UG",
    "CN",
    "VN",
    "NL",
    "MY",
    "TH",
    "NG",
    "ZA",
    "BE",
    "DE",
    "FR",
    "GB",
    "US",
    "HK",
    "SG",
    "AE",
    "IN",
    "ID",
    "PH",
    "MZ",
    "MG",
    "CM",
    "CD",
    "GA",
    "ET",
    "SD",
    "EG",
    "TR",
    "ES",
    "IT",
    "PT",
    "BR",
    "MX",
    "CO",
    "PE",
    "EC",
    "AR",
    "CA",
    "AU",
    "NZ",
    "JP",
    "KR",
    "LA",
    "KH",
    "MM",
    "BD",
    "PK",
    "LK",
    "OM",
    "QA",
    "SA",
    "KW",
    "IR",
    "IQ",
    "JO",
    "GH",
    "CI",
    "SN",
    "TG",
]
_WEIGHTS = [max(1.0, 30.0 / (i + 1)) for i in range(len(COUNTRIES))]
_HS_BY_COMMODITY = {
    rec.COMMODITY_WILDLIFE: [
        "010690",
        "010649",
        "020890",
        "030192",
        "030389",
        "030499",
        "050710",
        "050790",
        "050800",
        "051000",
        "410390",
        "430180",
        "430390",
        "960190",
        "970500",
        "030281",
        "030571",
        "160420",
    ],
    rec.COMMODITY_TIMBER: [
        "440349",
        "440399",
        "440729",
        "440799",
        "440929",
        "441299",
        "940360",
        "121190",
        "330129",
    ],
    rec.COMMODITY_ODS_HFC: ["290371", "290372", "290379", "382478", "382479", "841869", "841510"],
}
_HS_CHAPTERS = [f"{c:02d}" for c in range(1, 98) if c != 77]
_OWNERS = [f"{a}{b}{c}" for a in "ACEGHMOTSK" for b in "MSLCOGEB" for c in "KQCAHNUX"][:400]
_SYLLABLES = [
    "ka",
    "ri",
    "mo",
    "tu",
    "sa",
    "le",
    "an",
    "ve",
    "do",
    "pi",
    "ra",
    "no",
    "ze",
    "li",
    "ma",
    "ko",
    "be",
    "ta",
    "ni",
    "go",
    "ul",
    "ar",
    "en",
    "os",
    "um",
    "ix",
    "ba",
    "da",
    "fe",
    "gu",
    "ho",
    "ja",
    "ke",
    "lu",
    "mi",
    "na",
    "ob",
    "pa",
    "qu",
    "ro",
    "si",
    "te",
    "vo",
    "wa",
    "ya",
    "zu",
]
_COMPANY_SUFFIX = (
    "Ltd",
    "Limited",
    "SARL",
    "GmbH",
    "BV",
    "Co. Ltd",
    "Trading",
    "Import Export",
    "A.Ş.",
    "S.A.",
    "LLC",
)
_COMPANY_HEAD = (
    "Sesame Traders",
    "Cool Parts",
    "Société Générale des Bois",
    "Öztürk Şirketi",
    "Mwangi Logistics",
    "Kilindini Freight",
    "Hải Phòng Timber",
    "Nguyễn Hardwood",
    "Çelik Refrigeration",
    "São Paulo Exportação",
    "Grünwald Handels",
    "Łódź Metals",
)
_FIRST = [
    "John",
    "Mary",
    "Ahmed",
    "Fatuma",
    "Wanjiru",
    "Otieno",
    "Chen",
    "Li",
    "Nguyen",
    "Thi",
    "Søren",
    "Jürgen",
    "José",
    "María",
    "François",
    "Zoë",
    "Chloé",
    "Renée",
    "Ömer",
    "Şule",
    "İbrahim",
    "Ngozi",
    "Chukwuemeka",
    "Aïsha",
    "Joël",
    "Mikołaj",
    "Dvořák",
    "Ana",
    "João",
]
_LAST = [
    "Doe",
    "Mwangi",
    "Odhiambo",
    "Kamau",
    "Wang",
    "Zhang",
    "Trần",
    "Phạm",
    "Østergaard",
    "Straße",
    "Müller",
    "García",
    "Peña",
    "Lefèvre",
    "Öztürk",
    "Yılmaz",  # noqa: RUF001 - a Turkish name
    "Şahin",
    "Okafor",
    "Adeyemi",
    "Diallo",
    "Ngoma",
    "Kowalski",
    "Nováková",
    "Gonçalves",
    "Ribeiro",
    "Haddad",
]
_VESSEL_HEAD = ("MSC", "MAERSK", "CMA CGM", "EVER", "COSCO", "ONE", "HMM", "YM", "ZIM", "KOTA", "SEA")
_COMMON_TEXT = (
    "sacks of sesame seed",
    "false wall behind the cargo",
    "declared as spare parts",
    "hidden under frozen fish",
    "mixed with charcoal bags",
    "declared as plastic scrap",
    "in a refrigerated container",
    "inside hollowed logs",
    "packed in cardboard boxes",
)


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables))


@dataclass
class Pools:
    """The names a build draws from, made once from the seed."""

    companies: list[str]
    persons: list[str]
    vessels: list[tuple[str, str]]  # (name, IMO)
    vocabulary: list[str]  # free-text words, drawn Zipf-like: the tail is rare
    species: list[str]
    timber: list[str]
    ports: dict[str, list[str]]

    @classmethod
    def make(cls, rng: random.Random) -> Pools:
        companies = [
            f"{rng.choice(_COMPANY_HEAD) if i % 10 == 0 else _word(rng, 3).capitalize()} "
            f"{_word(rng, 2).capitalize()} {rng.choice(_COMPANY_SUFFIX)}"
            for i in range(40_000)
        ]
        persons = [
            f"{rng.choice(_FIRST)} {_word(rng, 3).capitalize()} {rng.choice(_LAST)}" for _ in range(60_000)
        ]
        vessels = []
        for _ in range(15_000):
            base = f"{rng.randrange(9_000_000, 9_999_999) // 10}"
            vessels.append(
                (f"{rng.choice(_VESSEL_HEAD)} {_word(rng, 3).upper()}", base + std_imo.calc_check_digit(base))
            )
        vocabulary = sorted({_word(rng, rng.randint(2, 4)) for _ in range(30_000)})
        rng.shuffle(vocabulary)
        table = _scientific_names()
        timber = [
            n
            for n in table
            if n.split()[0]
            in {
                "Dalbergia",
                "Pterocarpus",
                "Swietenia",
                "Aquilaria",
                "Gonystylus",
                "Guibourtia",
                "Santalum",
                "Prunus",
            }
        ]
        species = [n for n in table if n not in timber]
        ports = {c: [c + _port_code(rng) for _ in range(3 if i > 10 else 8)] for i, c in enumerate(COUNTRIES)}
        return cls(companies, persons, vessels, vocabulary, species, timber, ports)


def _port_code(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3))


def _scientific_names() -> list[str]:
    """The species table's two-word names (what a record's species field holds)."""
    from importlib import resources

    text = (resources.files("node") / "data" / "species.csv").read_text(encoding="utf-8")
    names = [line.split(",", 1)[0] for line in text.splitlines()[1:] if line]
    return [n for n in names if len(n.split()) >= 2 and species_names.common_names(n)]


@dataclass
class Probes:
    """Values the store holds, for the queries (one seizure in PROBE_EVERY)."""

    containers: list[str] = field(default_factory=list)
    imos: list[str] = field(default_factory=list)
    vessel_words: list[str] = field(default_factory=list)
    companies: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)
    rare_words: list[str] = field(default_factory=list)  # the rarest word of the seizure's text
    common_words: list[str] = field(default_factory=list)
    hs6: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)

    def note(self, s: rec.Seizure, rare: str) -> None:
        self.containers.append(s.conveyance.container_numbers[0])
        if s.conveyance.vessel_imo:
            self.imos.append(s.conveyance.vessel_imo)
            self.vessel_words.append(s.conveyance.vessel_name.split()[-1])
        for p in s.parties:
            (self.persons if p.kind == rec.PARTY_KIND_PERSON else self.companies).append(p.name)
        if rare:
            self.rare_words.append(rare)
        self.hs6.append(s.goods[0].hs_code)
        self.dates.append(s.incident_date)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> Probes:
        return cls(**json.loads(path.read_text()))


class SeizureSource:
    """Seizures for one build, drawn from `Pools`, noting `Probes` as it goes."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.pools = Pools.make(self.rng)
        self.rank = {w: i for i, w in enumerate(self.pools.vocabulary)}
        self.probes = Probes(common_words=self.pools.vocabulary[:4])
        self.made = 0

    def seizures(self, count: int) -> Iterator[rec.Seizure]:
        for _ in range(count):
            yield self.one()

    def _text_word(self) -> str:
        """A free-text word: Zipf-like over the vocabulary (a few are in many
        records, most in a handful)."""
        v = self.pools.vocabulary
        rank = int(self.rng.paretovariate(0.6)) - 1
        return v[rank] if rank < len(v) else self.rng.choice(v)

    def one(self) -> rec.Seizure:
        rng, p = self.rng, self.pools
        s = random_seizure(rng, self.today)
        country = rng.choices(COUNTRIES, _WEIGHTS)[0]
        s.place.country = country
        s.place.port_locode = rng.choice(p.ports[country])
        s.place.description = (
            f"{rng.choice(('terminal', 'berth', 'warehouse', 'airport cargo shed'))} {rng.randint(1, 40)}"
        )
        s.route.origin_country, s.route.export_country, s.route.destination_country = rng.choices(
            COUNTRIES, _WEIGHTS, k=3
        )
        s.route.transit_countries[:] = rng.choices(
            COUNTRIES, _WEIGHTS, k=rng.choices((0, 1, 2), (5, 3, 1))[0]
        )
        g = s.goods[0]
        g.hs_code = rng.choice(_HS_BY_COMMODITY.get(g.commodity, [g.hs_code]))
        if rng.random() < 0.05:  # the long tail: any heading of any chapter
            g.hs_code = f"{rng.choice(_HS_CHAPTERS)}{rng.randrange(10_000):04d}"
        if g.commodity == rec.COMMODITY_WILDLIFE:
            g.species = rng.choice(p.species)
        elif g.commodity == rec.COMMODITY_TIMBER:
            g.species = rng.choice(p.timber)
        words = [self._text_word() for _ in range(rng.randint(2, 8))]
        g.description = f"{g.description} {' '.join(words[:2])}"
        s.concealment = rng.choice(_COMMON_TEXT)
        s.notes = " ".join(words[2:])
        s.conveyance.container_numbers[:] = [self._container() for _ in range(rng.randint(1, 3))]
        if s.conveyance.mode == rec.TRANSPORT_MODE_SEA:
            s.conveyance.vessel_name, s.conveyance.vessel_imo = rng.choice(p.vessels)
        del s.parties[:]
        for _ in range(rng.choices((1, 2, 3), (5, 4, 1))[0]):
            person = rng.random() < 0.4
            s.parties.add(
                kind=rec.PARTY_KIND_PERSON if person else rec.PARTY_KIND_COMPANY,
                role=rng.choice((rec.PARTY_ROLE_SHIPPER, rec.PARTY_ROLE_CONSIGNEE, rec.PARTY_ROLE_BROKER)),
                name=rng.choice(p.persons if person else p.companies),
                country=rng.choices(COUNTRIES, _WEIGHTS)[0],
            )
        if self.made % PROBE_EVERY == 0:
            self.probes.note(s, max(words, key=self.rank.__getitem__))
        self.made += 1
        return s

    def _container(self) -> str:
        base = f"{self.rng.choice(_OWNERS)}U{self.rng.randrange(10**6):06d}"
        return base + iso6346.calc_check_digit(base)

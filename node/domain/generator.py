"""Realistic seizures and alerts, deterministic for a seed, to any volume.

For the demo, the benchmarks, load tests and training: each record is drawn
from a trade profile that hangs together the way enforcement reports describe
them — ivory and pangolin scales leaving East and West African ports for South
East Asia by sea in containers; rhino horn by air in passengers' luggage;
rosewood logs declared as sawn wood (HS 4407.99); HCFC-22 from East Asia in
cylinders declared as HFC-134a; e-waste and plastic waste from Europe to West
Africa and South East Asia under Operation DEMETER; shark fins and totoaba
maw; frozen tuna without a catch certificate. Containers and IMO numbers carry
their check digits; ports are real UN/LOCODEs of the seizing country; HS
codes, CITES species (from node/data/species.csv), ODS substances and Basel
codes pass the node's own validation.

Record `i` of a seed is the same however many are asked for (each record has
its own random stream, seeded by `(seed, i)`), so a stream of 2.5 million is
made in constant memory, can be resumed at any index, and is reproducible on
any machine: Python's `random.Random` with a string seed is stable across
versions and platforms.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from stdnum import imo as std_imo
from stdnum import iso6346

from gcn.v1 import records_pb2 as rec

W, T, ODS, EW, PW, HW, IUU = (
    rec.COMMODITY_WILDLIFE,
    rec.COMMODITY_TIMBER,
    rec.COMMODITY_ODS_HFC,
    rec.COMMODITY_E_WASTE,
    rec.COMMODITY_PLASTIC_WASTE,
    rec.COMMODITY_HAZARDOUS_WASTE,
    rec.COMMODITY_IUU_FISH,
)
SEA, AIR, ROAD, POSTAL = (
    rec.TRANSPORT_MODE_SEA,
    rec.TRANSPORT_MODE_AIR,
    rec.TRANSPORT_MODE_ROAD,
    rec.TRANSPORT_MODE_POSTAL,
)
APP_I, APP_II = rec.CITES_APPENDIX_I, rec.CITES_APPENDIX_II

# Real UN/LOCODEs: seaports, airports and border posts where such seizures are made.
PORTS: dict[str, tuple[str, ...]] = {
    "KE": ("KEMBA", "KENBO", "KELAU"),
    "TZ": ("TZDAR", "TZZNZ", "TZTGT"),
    "UG": ("UGEBB", "UGMAL"),
    "MZ": ("MZMPM", "MZBEW", "MZPOL"),
    "ZA": ("ZADUR", "ZACPT", "ZAJNB"),
    "NG": ("NGAPP", "NGTIN", "NGLOS"),
    "GH": ("GHTEM", "GHACC"),
    "CM": ("CMDLA", "CMKBI"),
    "TG": ("TGLFW",),
    "CI": ("CIABJ", "CISPY"),
    "SN": ("SNDKR",),
    "MG": ("MGTMM", "MGTNR"),
    "ET": ("ETADD",),
    "VN": ("VNHPH", "VNSGN", "VNCLI"),
    "CN": ("CNSHA", "CNNSA", "CNXMN", "CNCAN"),
    "HK": ("HKHKG",),
    "MY": ("MYPKG", "MYTPP", "MYKUL"),
    "TH": ("THLCH", "THBKK"),
    "SG": ("SGSIN",),
    "ID": ("IDJKT", "IDSUB"),
    "PH": ("PHMNL",),
    "LA": ("LAVTE",),
    "KH": ("KHPNH", "KHKOS"),
    "AE": ("AEJEA", "AEDXB"),
    "IN": ("INNSA", "INMAA"),
    "PK": ("PKKHI",),
    "TR": ("TRMER", "TRIST"),
    "NL": ("NLRTM", "NLAMS"),
    "BE": ("BEANR", "BEBRU"),
    "DE": ("DEHAM", "DEBRV", "DEFRA"),
    "FR": ("FRLEH", "FRCDG"),
    "GB": ("GBFXT", "GBLGP", "GBLHR"),
    "ES": ("ESALG", "ESVLC"),
    "IT": ("ITGOA", "ITGIT"),
    "US": ("USLAX", "USNYC", "USMIA"),
    "MX": ("MXZLO", "MXENS"),
    "BR": ("BRSSZ", "BRGRU"),
    "JP": ("JPTYO", "JPOSA"),
}

_SEIZING_WEIGHT = {"KE": 6, "TZ": 4, "NG": 5, "VN": 6, "CN": 5, "HK": 4, "MY": 4, "TH": 3, "NL": 3, "BE": 3}


@dataclass(frozen=True)
class Item:
    description: str
    hs: tuple[str, ...]
    unit: rec.Unit.ValueType
    quantity: tuple[float, float]
    species: tuple[tuple[str, rec.CitesAppendix.ValueType], ...] = ()
    ods: tuple[str, ...] = ()
    basel: tuple[str, ...] = ()
    per_kg_usd: float = 0.0


@dataclass(frozen=True)
class Profile:
    name: str
    commodity: rec.Commodity.ValueType
    items: tuple[Item, ...]
    origins: tuple[str, ...]
    exports: tuple[str, ...]
    destinations: tuple[str, ...]
    transits: tuple[str, ...]
    modes: tuple[rec.TransportMode.ValueType, ...]
    concealments: tuple[str, ...]
    operations: tuple[str, ...] = ("",)
    permits: tuple[rec.PermitType.ValueType, ...] = ()
    weight: int = 1


PROFILES: tuple[Profile, ...] = (
    Profile(
        "ivory",
        W,
        (
            Item(
                "raw elephant ivory tusks",
                ("050710",),
                rec.UNIT_KG,
                (8, 3200),
                (("Loxodonta africana", APP_I), ("Loxodonta cyclotis", APP_I)),
                per_kg_usd=700,
            ),
            Item(
                "worked ivory carvings and bangles",
                ("960110", "970500"),
                rec.UNIT_PIECE,
                (5, 900),
                (("Loxodonta africana", APP_I), ("Elephas maximus", APP_I)),
            ),
        ),
        ("UG", "CD", "CM", "TZ", "MZ", "KE"),
        ("KE", "TZ", "MZ", "NG", "UG"),
        ("VN", "CN", "MY", "TH", "HK", "KH", "LA"),
        ("MY", "SG", "AE", "LK"),
        (SEA, SEA, SEA, AIR),
        (
            "false wall behind sacks of sesame seed",
            "inside hollowed timber logs",
            "wrapped in plastic under bags of dried fish",
            "declared as plastic scrap, mixed in bales",
            "in a concealed compartment of the container floor",
        ),
        ("", "", "THUNDERBALL", "COBRA"),
        weight=4,
    ),
    Profile(
        "pangolin scales",
        W,
        (
            Item(
                "pangolin scales in sacks",
                ("050800", "051000"),
                rec.UNIT_KG,
                (40, 8800),
                (
                    ("Smutsia gigantea", APP_I),
                    ("Phataginus tricuspis", APP_I),
                    ("Phataginus tetradactyla", APP_I),
                    ("Manis javanica", APP_I),
                ),
                per_kg_usd=350,
            ),
        ),
        ("CM", "NG", "CD", "GA", "CI", "GH"),
        ("NG", "CM", "CI", "GH", "TG"),
        ("VN", "CN", "HK", "MY", "LA"),
        ("MY", "SG", "TR"),
        (SEA, SEA, AIR),
        (
            "declared as cashew nuts",
            "declared as frozen beef, under cartons",
            "in bags of ginger",
            "declared as oyster shells",
        ),
        ("", "THUNDER", "COBRA"),
        weight=3,
    ),
    Profile(
        "rhino horn",
        W,
        (
            Item(
                "rhinoceros horn pieces",
                ("050790",),
                rec.UNIT_KG,
                (1, 60),
                (("Ceratotherium simum", APP_I), ("Diceros bicornis", APP_I)),
                per_kg_usd=25000,
            ),
        ),
        ("ZA", "MZ", "KE"),
        ("ZA", "MZ", "KE", "ET"),
        ("VN", "CN", "MY", "TH"),
        ("ET", "AE", "QA"),
        (AIR, AIR, POSTAL),
        (
            "in checked luggage, wrapped in foil",
            "moulded in plaster as ornaments",
            "in a courier parcel declared as handicraft",
        ),
        ("", "COBRA"),
    ),
    Profile(
        "live reptiles and birds",
        W,
        (
            Item(
                "live tortoises",
                ("010620",),
                rec.UNIT_PIECE,
                (6, 1200),
                (("Astrochelys radiata", APP_I), ("Astrochelys yniphora", APP_I)),
            ),
            Item(
                "live grey parrots", ("010632",), rec.UNIT_PIECE, (4, 300), (("Psittacus erithacus", APP_I),)
            ),
        ),
        ("MG", "CM", "CD", "NG"),
        ("MG", "CM", "NG", "KE"),
        ("AE", "TH", "CN", "MX", "MY"),
        ("ET", "KE", "AE"),
        (AIR, AIR, POSTAL, ROAD),
        (
            "in suitcases, taped in socks",
            "in ventilated boxes declared as live fish",
            "under the seats of a minibus",
        ),
        ("", "BLIZZARD"),
        (rec.PERMIT_TYPE_CITES,),
    ),
    Profile(
        "marine wildlife",
        W,
        (
            Item(
                "dried shark fins",
                ("030571",),
                rec.UNIT_KG,
                (20, 4000),
                (("Carcharhinus falciformis", APP_II), ("Carcharhinus longimanus", APP_II)),
                per_kg_usd=180,
            ),
            Item(
                "dried totoaba swim bladders",
                ("030572",),
                rec.UNIT_KG,
                (2, 150),
                (("Totoaba macdonaldi", APP_I),),
            ),
            Item(
                "dried sea cucumbers", ("030832",), rec.UNIT_KG, (30, 2500), (("Holothuria scabra", APP_II),)
            ),
        ),
        ("MX", "EC", "PE", "MZ", "MG", "TZ"),
        ("MX", "EC", "MZ", "TZ", "KE"),
        ("HK", "CN", "VN", "MY"),
        ("US", "AE", "SG"),
        (SEA, AIR, AIR),
        ("declared as dried fish maw", "in cartons of frozen squid", "in personal luggage"),
        ("", "SEAHORSE"),
        (rec.PERMIT_TYPE_CITES,),
    ),
    Profile(
        "rosewood",
        T,
        (
            Item(
                "rosewood logs declared as sawn wood",
                ("440799", "440349", "440399"),
                rec.UNIT_CUBIC_METRE,
                (5, 420),
                (
                    ("Pterocarpus erinaceus", APP_II),
                    ("Dalbergia cochinchinensis", APP_II),
                    ("Dalbergia melanoxylon", APP_II),
                    ("Dalbergia maritima", APP_II),
                ),
            ),
            Item("agarwood chips", ("121190",), rec.UNIT_KG, (10, 900), (("Aquilaria malaccensis", APP_II),)),
        ),
        ("MG", "MZ", "NG", "GH", "LA", "KH", "MM"),
        ("MG", "MZ", "NG", "GH", "TG", "LA"),
        ("CN", "HK", "VN"),
        ("MY", "SG", "LK"),
        (SEA, SEA, ROAD),
        (
            "under a top layer of plantation teak",
            "declared as sawn hardwood (HS 4407.99)",
            "in flat racks, false permits",
        ),
        ("", "THUNDER"),
        (rec.PERMIT_TYPE_CITES, rec.PERMIT_TYPE_FLEGT_LICENCE),
        weight=3,
    ),
    Profile(
        "refrigerants",
        ODS,
        (
            Item(
                "HCFC-22 in disposable cylinders",
                ("290371", "382478"),
                rec.UNIT_KG,
                (130, 24000),
                ods=("HCFC-22",),
                per_kg_usd=6,
            ),
            Item(
                "refrigerant mixtures mislabelled as HFC-134a",
                ("382479", "382478"),
                rec.UNIT_KG,
                (200, 18000),
                ods=("R-404A", "R-410A", "HFC-134a", "HCFC-141b"),
                per_kg_usd=8,
            ),
        ),
        ("CN", "IN"),
        ("CN", "AE", "SG", "IN"),
        ("KE", "TZ", "NG", "GH", "VN", "PH", "ID", "TR"),
        ("AE", "SG", "MY"),
        (SEA, SEA, ROAD),
        (
            "cylinders relabelled as HFC-134a",
            "behind air-conditioner spare parts",
            "declared as fire extinguishers",
        ),
        ("DEMETER", "DEMETER", "CASSINI"),
        (rec.PERMIT_TYPE_ODS_LICENCE,),
        weight=3,
    ),
    Profile(
        "e-waste",
        EW,
        (
            Item(
                "used cathode-ray-tube monitors and broken TVs",
                ("854911", "854900"),
                rec.UNIT_TONNE,
                (2, 80),
                basel=("A1180",),
            ),
            Item(
                "waste printed circuit boards",
                ("854931", "854900"),
                rec.UNIT_TONNE,
                (1, 40),
                basel=("A1180", "B1110"),
            ),
        ),
        ("GB", "DE", "NL", "BE", "US", "IT"),
        ("GB", "DE", "NL", "BE", "US", "IT"),
        ("NG", "GH", "TG", "CM", "VN", "PK"),
        ("ES", "MA"),
        (SEA, SEA, ROAD),
        ("declared as second-hand goods", "inside used cars", "loaded behind household goods"),
        ("DEMETER", "DEMETER", "CASSINI"),
        (rec.PERMIT_TYPE_BASEL_NOTIFICATION,),
        weight=3,
    ),
    Profile(
        "plastic waste",
        PW,
        (
            Item(
                "mixed plastic waste in bales",
                ("391590", "391510", "391520"),
                rec.UNIT_TONNE,
                (10, 420),
                basel=("Y48", "A3210", "B3011"),
            ),
        ),
        ("GB", "DE", "NL", "BE", "US", "FR", "IT", "ES", "JP"),
        ("GB", "DE", "NL", "BE", "US", "FR", "IT", "ES", "JP"),
        ("MY", "VN", "TR", "ID", "TH"),
        ("SG", "HK"),
        (SEA,),
        (
            "declared as clean polyethylene film",
            "contaminated with household waste",
            "declared as raw material",
        ),
        ("DEMETER", "CASSINI"),
        (rec.PERMIT_TYPE_BASEL_NOTIFICATION,),
        weight=2,
    ),
    Profile(
        "hazardous waste",
        HW,
        (
            Item("used lead-acid batteries", ("854810", "854911"), rec.UNIT_TONNE, (3, 60), basel=("A1160",)),
            Item(
                "waste oil and sludge in drums", ("271099",), rec.UNIT_TONNE, (5, 120), basel=("Y8", "A3020")
            ),
        ),
        ("GB", "DE", "NL", "BE", "US", "IT", "AE"),
        ("GB", "DE", "NL", "BE", "US", "IT", "AE"),
        ("NG", "GH", "VN", "IN", "PK"),
        ("ES", "TR"),
        (SEA, ROAD),
        ("declared as used spare parts", "drums declared as lubricants"),
        ("DEMETER",),
        (rec.PERMIT_TYPE_BASEL_NOTIFICATION,),
    ),
    Profile(
        "IUU fish",
        IUU,
        (
            Item(
                "frozen yellowfin tuna without a valid catch certificate",
                ("030342",),
                rec.UNIT_TONNE,
                (4, 400),
            ),
            Item("frozen hake, catch area misdeclared", ("030366",), rec.UNIT_TONNE, (2, 200)),
        ),
        ("PH", "ID", "VN", "CN", "ES"),
        ("PH", "ID", "VN", "CN", "ES"),
        ("ES", "IT", "NL", "US", "JP", "TH"),
        ("SG", "MU"),
        (SEA,),
        ("transshipped at sea, logbook gaps", "catch certificate of another vessel"),
        ("",),
        (rec.PERMIT_TYPE_CATCH_CERTIFICATE,),
    ),
)

_OWNERS = ("MSKU", "MSCU", "CMAU", "HLXU", "OOLU", "EGHU", "TGHU", "CSQU", "TCLU", "SEGU", "FCIU", "TRHU")
_VESSELS = ("MSC", "MAERSK", "CMA CGM", "EVER", "COSCO", "ONE", "HMM", "YM", "ZIM", "KOTA", "SEA", "NORDIC")
_SHIPS = (
    "ALTAIR",
    "LUMIERE",
    "TANGO",
    "KAVELI",
    "ORION",
    "SERENITY",
    "DAWN",
    "HALCYON",
    "MERIDIAN",
    "AURORA",
)
_AIRLINES = ("KQ", "ET", "QR", "EK", "TK", "VN", "CZ", "MH", "SQ", "AF", "LH")
_FIRST = (
    "John",
    "Mary",
    "Ahmed",
    "Fatuma",
    "Wanjiru",
    "Otieno",
    "Chen",
    "Li",
    "Nguyen",
    "Søren",
    "José",
    "María",
    "François",
    "Zoë",
    "Ömer",
    "Şule",
    "İbrahim",
    "Ngozi",
    "Aïsha",
    "Joël",
    "Mikołaj",
    "João",
    "Thi",
    "Kwame",
)
_LAST = (
    "Doe",
    "Mwangi",
    "Odhiambo",
    "Kamau",
    "Wang",
    "Zhang",
    "Trần",
    "Phạm",
    "Østergaard",
    "Müller",
    "García",
    "Lefèvre",
    "Öztürk",
    "Şahin",
    "Okafor",
    "Adeyemi",
    "Diallo",
    "Ngoma",
    "Kowalski",
    "Gonçalves",
    "Haddad",
)
_COMPANY = (
    "Sesame Traders",
    "Kilindini Freight",
    "Société Générale des Bois",
    "Öztürk Şirketi",
    "Mwangi Logistics",
    "Hải Phòng Timber",
    "Nguyễn Hardwood",
    "Çelik Refrigeration",
    "São Paulo Exportação",
    "Grünwald Handels",
    "Łódź Metals",
    "Coastal Reefer",
    "Golden Harvest",
    "Blue Ocean Seafood",
    "Green Planet Recycling",
    "Sahel Agro",
    "Pacific Rim Holdings",
    "Delta Scrap",
    "Evergreen Parts",
    "Lakeside General",
)
_SUFFIX = (
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
_DETECTION = (
    rec.DETECTION_METHOD_NII_SCAN,
    rec.DETECTION_METHOD_RISK_PROFILE,
    rec.DETECTION_METHOD_INTELLIGENCE,
    rec.DETECTION_METHOD_PHYSICAL_EXAMINATION,
    rec.DETECTION_METHOD_CANINE,
    rec.DETECTION_METHOD_DOCUMENTARY_CHECK,
    rec.DETECTION_METHOD_RANDOM,
)


def container_number(rng: random.Random) -> str:
    base = f"{rng.choice(_OWNERS)}{rng.randrange(10**6):06d}"
    return base + iso6346.calc_check_digit(base)


def imo_number(rng: random.Random) -> str:
    base = f"{rng.randrange(900000, 999999)}"
    return base + std_imo.calc_check_digit(base)


def _pick(rng: random.Random, options: Sequence[str], exclude: str = "") -> str:
    left = [o for o in options if o != exclude] or list(options)
    return rng.choice(left)


def _company(rng: random.Random) -> str:
    return f"{rng.choice(_COMPANY)} {rng.choice(_SUFFIX)}"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


@dataclass(frozen=True)
class Generator:
    """`seizures(n)` and `alerts(n)`: the first n records of this seed."""

    seed: int
    today: date
    # Where seizures are made (place.country); empty: anywhere along the profiles' routes.
    countries: tuple[str, ...] = ()
    years: int = 10  # incident dates spread over this many years before `today`
    profiles: tuple[Profile, ...] = field(default=PROFILES)

    def __post_init__(self) -> None:
        unknown = [c for c in self.countries if c not in PORTS]
        if unknown:
            raise ValueError(f"no ports known for {', '.join(unknown)} (known: {', '.join(sorted(PORTS))})")

    def _rng(self, kind: str, index: int) -> random.Random:
        return random.Random(f"gcn-generator:{self.seed}:{kind}:{index}")

    def seizures(self, count: int, start: int = 0) -> Iterator[rec.Seizure]:
        for i in range(start, start + count):
            yield self.seizure(i)

    def alerts(self, count: int, start: int = 0) -> Iterator[rec.Alert]:
        for i in range(start, start + count):
            yield self.alert(i)

    def seizure(self, index: int) -> rec.Seizure:
        rng = self._rng("seizure", index)
        profile = rng.choices(self.profiles, [p.weight for p in self.profiles])[0]
        origin = rng.choice(profile.origins)
        export = origin if origin in profile.exports and rng.random() < 0.6 else rng.choice(profile.exports)
        destination = _pick(rng, profile.destinations, export)
        transit = [
            c for c in rng.sample(profile.transits, k=min(len(profile.transits), rng.choice((0, 0, 1, 2))))
        ]
        transit = [c for c in transit if c not in (export, destination)]
        if self.countries:
            seizing = rng.choice(self.countries)
        else:
            along = [c for c in (export, *transit, destination) if c in PORTS]
            weights = [_SEIZING_WEIGHT.get(c, 1) for c in along]
            seizing = rng.choices(along, weights)[0] if along else rng.choice(sorted(PORTS))
        direction = (
            rec.DIRECTION_EXPORT
            if seizing == export
            else rec.DIRECTION_IMPORT
            if seizing == destination
            else rec.DIRECTION_TRANSIT
        )
        mode = rng.choice(profile.modes)
        day = self.today - timedelta(days=int(rng.triangular(0, 365 * self.years, 0)))
        s = rec.Seizure(
            incident_date=day.isoformat(),
            place=rec.Place(
                port_locode=rng.choice(PORTS[seizing]),
                country=seizing,
                description=rng.choice(
                    (
                        "container terminal",
                        "cargo shed",
                        "passenger hall",
                        "border post",
                        "container freight station",
                    )
                )
                + f" {rng.randint(1, 12)}",
            ),
            direction=direction,
            detection_method=rng.choice(_DETECTION),
            concealment=rng.choice(profile.concealments),
            route=rec.Route(
                origin_country=origin,
                export_country=export,
                transit_countries=transit,
                destination_country=destination,
            ),
            operation_code=rng.choice(profile.operations),
            tlp=rng.choices(
                (rec.TLP_GREEN, rec.TLP_AMBER, rec.TLP_CLEAR, rec.TLP_AMBER_STRICT), (6, 3, 1, 1)
            )[0],
        )
        for item in rng.sample(profile.items, k=rng.choice((1, 1, 1, len(profile.items)))):
            s.goods.append(self._goods(rng, profile, item))
        self._conveyance(rng, s, mode)
        self._parties(rng, s, export, destination, mode)
        if profile.permits and rng.random() < 0.4:
            s.documents.permits.append(
                rec.Permit(
                    type=rng.choice(profile.permits),
                    number=f"{export}/{day.year}/{rng.randrange(10**5):05d}",
                    issuing_country=export,
                    forged=rng.random() < 0.5,
                )
            )
        if rng.random() < 0.3:
            s.notes = rng.choice(
                (
                    "Consignee registered weeks before the shipment.",
                    "Same shipper as an earlier seizure in the region.",
                    "Scanner image showed a density anomaly.",
                    "Declared weight differed from the weighbridge by a third.",
                    "Tip-off from the RILO.",
                )
            )
        return s

    @staticmethod
    def _goods(rng: random.Random, profile: Profile, item: Item) -> rec.GoodsItem:
        low, high = item.quantity
        value = round(rng.uniform(low, high), 1 if item.unit != rec.UNIT_PIECE else 0) or low
        g = rec.GoodsItem(
            commodity=profile.commodity,
            description=item.description,
            hs_code=rng.choice(item.hs),
            quantity=rec.Quantity(value=value, unit=item.unit),
        )
        if item.species:
            g.species, g.cites_appendix = rng.choice(item.species)
        if item.ods:
            g.ods_substance = rng.choice(item.ods)
        if item.basel:
            g.basel_code = rng.choice(item.basel)
        if item.per_kg_usd and item.unit == rec.UNIT_KG and rng.random() < 0.5:
            g.declared_value.CopyFrom(
                rec.Money(amount=round(value * item.per_kg_usd * rng.uniform(0.01, 0.1)), currency="USD")
            )
        return g

    @staticmethod
    def _conveyance(rng: random.Random, s: rec.Seizure, mode: rec.TransportMode.ValueType) -> None:
        c = s.conveyance
        c.mode = mode
        if mode == SEA:
            c.vessel_imo = imo_number(rng)
            c.vessel_name = f"{rng.choice(_VESSELS)} {rng.choice(_SHIPS)}"
            c.container_numbers.extend(container_number(rng) for _ in range(rng.choice((1, 1, 1, 2, 3))))
            s.documents.bill_of_lading = f"{c.container_numbers[0][:4]}{rng.randrange(10**8):08d}"
        elif mode == AIR:
            c.flight = f"{rng.choice(_AIRLINES)}{rng.randint(10, 999)}"
            s.documents.air_waybill = f"{rng.randint(100, 999)}-{rng.randrange(10**8):08d}"
        elif mode == ROAD:
            letters = "".join(rng.choice("ABCDEFGH") for _ in range(2))
            c.vehicle_registration = f"K{letters} {rng.randint(100, 999)}{rng.choice('ABCDEFGHJK')}"

    @staticmethod
    def _parties(rng: random.Random, s: rec.Seizure, export: str, destination: str, mode: int) -> None:
        s.parties.append(
            rec.Party(
                kind=rec.PARTY_KIND_COMPANY, role=rec.PARTY_ROLE_SHIPPER, name=_company(rng), country=export
            )
        )
        if rng.random() < 0.7:
            s.parties.append(
                rec.Party(
                    kind=rec.PARTY_KIND_COMPANY,
                    role=rec.PARTY_ROLE_CONSIGNEE,
                    name=_company(rng),
                    country=destination,
                )
            )
        if rng.random() < 0.4 or mode == AIR:
            role = rec.PARTY_ROLE_PASSENGER if mode == AIR else rec.PARTY_ROLE_BROKER
            s.parties.append(
                rec.Party(
                    kind=rec.PARTY_KIND_PERSON,
                    role=role,
                    name=_person(rng),
                    country=export,
                    identifier=f"{rng.choice('ABCDEFGHKLMNP')}{rng.randrange(10**7):07d}",
                )
            )

    def alert(self, index: int) -> rec.Alert:
        """An alert on something a seizure of the same seed could carry: a
        vessel, a container, a company or person, a route; valid 30-180 days."""
        rng = self._rng("alert", index)
        seizure = self.seizure(rng.randrange(max(1, index * 4 + 1)))
        profile_commodity = seizure.goods[0].commodity
        subjects: list[rec.AlertSubject] = []
        if seizure.conveyance.vessel_imo:
            subjects.append(
                rec.AlertSubject(kind=rec.SUBJECT_KIND_VESSEL, value=seizure.conveyance.vessel_imo)
            )
        if seizure.conveyance.container_numbers and rng.random() < 0.5:
            subjects.append(
                rec.AlertSubject(
                    kind=rec.SUBJECT_KIND_CONTAINER, value=seizure.conveyance.container_numbers[0]
                )
            )
        shipper = seizure.parties[0].name
        subjects.append(rec.AlertSubject(kind=rec.SUBJECT_KIND_COMPANY, value=shipper))
        r = seizure.route
        hops = [r.origin_country, *r.transit_countries, r.destination_country]
        route = ">".join(dict.fromkeys(h for h in hops if h))
        if route.count(">") >= 1:
            subjects.append(rec.AlertSubject(kind=rec.SUBJECT_KIND_ROUTE, value=route))
        what = seizure.goods[0].description
        return rec.Alert(
            title=f"{what[:1].upper()}{what[1:]}: {shipper} on {route.replace('>', ' > ')}",
            subjects=subjects,
            indicators=[
                seizure.concealment,
                f"HS {seizure.goods[0].hs_code[:4]}.{seizure.goods[0].hs_code[4:6]} declared",
            ],
            commodity=profile_commodity,
            priority=rng.choices(
                (rec.PRIORITY_LOW, rec.PRIORITY_MEDIUM, rec.PRIORITY_HIGH, rec.PRIORITY_URGENT), (1, 4, 3, 1)
            )[0],
            valid_until=(self.today + timedelta(days=rng.randint(30, 180))).isoformat(),
            recommended_action=rng.choice(
                (
                    "Scan every container of this shipper and notify the RILO.",
                    "Physical inspection on arrival; hold for CITES verification.",
                    "Check the licence with the issuing ODS unit before release.",
                    "Verify the Basel notification; detain if absent.",
                )
            ),
            operation_code=seizure.operation_code,
            tlp=rng.choice((rec.TLP_GREEN, rec.TLP_AMBER)),
        )

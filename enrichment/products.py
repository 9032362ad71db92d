"""Product categories from whole words: the dimension's key and record, the rules, and the offline twin."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from enrichment.lookup import Lookup, offline_lookup
from medallion.silver import is_non_product_code

LOCAL_SOURCE = "local_rules"
DATAMUSE_SOURCE = "datamuse"
OTHER = "other"

SEASONAL_WORDS = frozenset(
    {
        "CHRISTMAS",
        "XMAS",
        "ADVENT",
        "SANTA",
        "REINDEER",
        "EASTER",
        "HALLOWEEN",
        "VALENTINE",
        "VALENTINES",
        "NATIVITY",
        "BAUBLE",
        "BAUBLES",
        "SNOWMAN",
        "TINSEL",
        "ELF",
    }
)

# Phrases outrank single words; among single words the one nearest the end (the head noun) wins.
PHRASES: dict[str, str] = {
    "T-LIGHT HOLDER": "home_garden",
    "HOT WATER BOTTLE": "home_garden",
    "DOOR STOP": "home_garden",
    "STORAGE BOX": "home_garden",
    "PEG BAG": "home_garden",
    "WALL ART": "home_garden",
    "DOOR HANGER": "home_garden",
    "MONEY BANK": "home_garden",
    "FIRST AID": "home_garden",
    "FRIDGE MAGNETS": "home_garden",
    "FRIDGE MAGNET": "home_garden",
    "WATERING CAN": "home_garden",
    "PLANT CAGE": "home_garden",
    "SEWING BOX": "home_garden",
    "TRINKET BOX": "home_garden",
    "TRINKET POT": "home_garden",
    "LUNCH BAG": "kitchen",
    "LUNCH BOX": "kitchen",
    "CAKE CASES": "kitchen",
    "BAKING CASES": "kitchen",
    "MINI CASES": "kitchen",
    "CAKE STAND": "kitchen",
    "CAKE TIN": "kitchen",
    "CAKE TINS": "kitchen",
    "TEA TOWEL": "kitchen",
    "TEA TOWELS": "kitchen",
    "BREAD BIN": "kitchen",
    "MILK JUG": "kitchen",
    "BOTTLE OPENER": "kitchen",
    "MEASURING SPOONS": "kitchen",
    "OVEN GLOVE": "kitchen",
    "EGG CUP": "kitchen",
    "JAM MAKING": "kitchen",
    "RECIPE BOX": "kitchen",
    "CUP AND SAUCER": "kitchen",
    "MILK PAN": "kitchen",
    "SHOPPING LIST": "stationery",
    "GIFT BAG": "stationery",
    "GIFT TAG": "stationery",
    "GIFT TAGS": "stationery",
    "GIFT WRAP": "stationery",
    "WRAPPING PAPER": "stationery",
    "STATIONERY SET": "stationery",
    "RIBBON REEL": "stationery",
    "PENCIL SHARPENER": "stationery",
    "CARD KIT": "toys",
    "SOFT TOY": "toys",
    "WATER BOMB": "toys",
    "SPINNING TOPS": "toys",
    "KNITTING NANCY": "toys",
    "GIFT SET": "toys",
    "ROCKING HORSE": "toys",
    "PLAYING CARDS": "toys",
    "PAPER CHAIN KIT": "party",
    "PAPER CUPS": "party",
    "PAPER PLATES": "party",
    "PAPER NAPKINS": "party",
    "CELEBRATION CANDLES": "party",
    "BIRTHDAY CANDLES": "party",
    "PARTY BAG": "party",
    "PARTY BAGS": "party",
    "BARRIER TAPE": "party",
    "LUGGAGE TAG": "fashion",
    "HAIR COMB": "fashion",
    "HAIR CLIP": "fashion",
    "HAIR SLIDE": "fashion",
    "KEY RING": "fashion",
    "KEYRING": "fashion",
    "LIP GLOSS": "fashion",
    "CARD WALLET": "fashion",
    "SHOPPER BAG": "fashion",
    "JUMBO BAG": "fashion",
    "HAND WARMER": "fashion",
    "KIDS BAG": "fashion",
}

WORDS: dict[str, str] = {
    **dict.fromkeys(
        "HOLDER CANDLE CANDLES CANDLEHOLDER CANDLEPOT T-LIGHT T-LIGHTS LANTERN LAMP LIGHT LIGHTS SHADE SIGN "
        "PLAQUE CLOCK FRAME MIRROR CUSHION CUSHIONS DOORMAT DOORSTOP HOOK HOOKS HANGER DECORATION DECORATIVE "
        "ORNAMENT HEART WICKER VASE BASKET BOX BOXES DRAWER KNOB KNOBS INCENSE RAKE TROWEL FORK GARDEN PLANT "
        "PLANTER BIRDHOUSE FEEDER BLOCK BLOCKS WORD LETTERS FLOWER FLOWERS PEG PEGS BIN QUILT THROW BLANKET "
        "PAD MATCHES CABINET SHELF CHALKBOARD STOOL TABLE CHAIR WASTEPAPER PARASOL-STAND WREATH BELL BELLS "
        "POT CANDLESTICK HOTTIE SOAP SPONGE PLASTERS WALL CURTAIN DOILY-MAT".split(),
        "home_garden",
    ),
    **dict.fromkeys(
        "MUG MUGS CUP CUPS SAUCER TEACUP TEAPOT PLATE PLATES BOWL BOWLS JUG TRAY SPOON SPOONS CUTLERY FORKS "
        "KNIFE KNIVES PAN TIN TINS JAR JARS BOTTLE BEAKER GLASS GLASSES NAPKINS NAPKIN PLACEMATS PLACEMAT "
        "COASTER COASTERS APRON CAKE CAKES BAKING LOAF CHOPPING POPCORN LUNCH TEA COFFEE SUGAR BISCUIT "
        "PANTRY KITCHEN CAKESTAND CUTTER CUTTERS WHISK COLANDER TUMBLER TUMBLERS FLASK "
        "CASSEROLE DISH".split(),
        "kitchen",
    ),
    **dict.fromkeys(
        "BAG BAGS TOTE SHOPPER HANDBAG PURSE PURSES WALLET NECKLACE NECKLACE BRACELET EARRINGS RING RINGS "
        "BROOCH JEWELLERY CHARM HAIR HAIRCLIP SCARF HAT GLOVES UMBRELLA PARASOL WASHBAG COSMETIC MAKEUP "
        "BANGLE PENDANT SLIPPERS SOCKS".split(),
        "fashion",
    ),
    **dict.fromkeys(
        "TOY TOYS GAME GAMES DOLL DOLLS PUZZLE JIGSAW DOMINOES SKITTLES HARMONICA TOPS SPINNING KNITTING "
        "FELTCRAFT KIT BALLOON BALLOONS TEDDY SOLDIER SOLDIERS RATTLE SKIPPING ROPE MARBLES CRAYONS "
        "COLOURING PAINT BUBBLES ROBOT BABY".split(),
        "toys",
    ),
    **dict.fromkeys(
        "CARD CARDS WRAP PENCIL PENCILS PEN PENS NOTEBOOK NOTEBOOKS JOURNAL STICKERS STICKER ENVELOPES "
        "ENVELOPE PAPER TAPE RIBBON RIBBONS STATIONERY MEMOBOARD ERASER RUBBER RUBBERS RULER CALCULATOR "
        "SKETCHBOOK DIARY CALENDAR TAGS TISSUE TISSUES LABELS NOTEPAD POSTCARD BOOKMARK".split(),
        "stationery",
    ),
    **dict.fromkeys("GARLAND BUNTING PENNANT PARTY CONFETTI INVITES PINATA".split(), "party"),
}

BRANDS: dict[str, str] = {
    "RETROSPOT": "Retrospot",
    "REGENCY": "Regency",
    "DOLLY GIRL": "Dolly Girl",
    "SPACEBOY": "Spaceboy",
    "CHARLIE & LOLA": "Charlie & Lola",
    "CHARLIE AND LOLA": "Charlie & Lola",
    "PANTRY": "Pantry",
    "BABUSHKA": "Babushka",
    "SKETCHBOOK": "Sketchbook",
    "LES ENFANTS": "Les Enfants",
    "SUKI": "Suki",
    "MAGIC GARDEN": "Magic Garden",
    "FELTCRAFT": "Feltcraft",
    "WOODLAND": "Woodland",
    "PAISLEY PARK": "Paisley Park",
    "DOILEY": "Doily",
    "DOILY": "Doily",
    "ENGLISH ROSE": "English Rose",
    "UNION JACK": "Union Jack",
    "I LOVE LONDON": "I Love London",
    "JAM MAKING": "Jam Making",
    "STRAWBERRY": "Strawberry",
}

TAG_WORDS: dict[str, str] = {
    **dict.fromkeys(
        "RED PINK BLUE GREEN WHITE BLACK IVORY CREAM YELLOW PURPLE ORANGE TURQUOISE SILVER GOLD".split(),
        "colour",
    ),
    **dict.fromkeys(
        "GLASS CERAMIC WOOD WOODEN METAL ENAMEL FELT WICKER ZINC SILK PLASTIC PAPER CRYSTAL POLYESTER".split(),
        "material",
    ),
    **dict.fromkeys("VINTAGE RETRO ANTIQUE TRADITIONAL RUSTIC FRENCH SCANDINAVIAN BOHEMIAN EDWARDIAN".split(), "style"),
    **dict.fromkeys("CHILDRENS CHILDS KIDS BABY GIRLS BOYS".split(), "children"),
    **dict.fromkeys("HANGING".split(), "hanging"),
}

# The marker as a whole run of letters; the substring test first, since most descriptions hold no marker at all.
_BRAND_PATTERNS = tuple(
    (marker, re.compile(rf"(?<![A-Z]){re.escape(marker)}(?![A-Z])"), brand) for marker, brand in BRANDS.items()
)
_TOKEN = re.compile(r"[A-Z0-9]+(?:[-'][A-Z0-9]+)*")
_SET_OF = re.compile(r"\b(?:SET|PACK|BOX)\s*(?:/|OF)?\s*\d+\b|\b\d+\s+(?:PIECE|PC)S?\b")
_MAX_PHRASE_WORDS = max(len(phrase.split()) for phrase in PHRASES)
_FILLER = frozenset("OF AND IN THE A WITH FOR SET PACK DESIGN ASSORTED SMALL MEDIUM LARGE JUMBO MINI".split())
_COLOUR_OR_MATERIAL = frozenset(word for word, tag in TAG_WORDS.items() if tag in {"colour", "material"})


@dataclass(frozen=True)
class ProductKey:
    """A product as silver names it."""

    stock_code: str | None
    description: str | None


class ProductRecord(BaseModel):
    """One row of enrichment.products, and the head noun to ask about when the rules leave it as other."""

    model_config = ConfigDict(frozen=True)

    stock_code: str | None
    description: str | None
    category: str
    brand: str | None
    is_seasonal: bool
    complexity: int = Field(ge=1, le=5)
    tags: list[str]
    source: str
    head_term: str | None = None


def words_of(text: str) -> list[str]:
    """Whole words of a description, so that HEART never matches ART."""
    return _TOKEN.findall(text.upper())


def _category_from(words: list[str]) -> str | None:
    best: tuple[int, int, str] | None = None
    for size in range(_MAX_PHRASE_WORDS, 1, -1):
        for start in range(len(words) - size + 1):
            category = PHRASES.get(" ".join(words[start : start + size]))
            if category and (best is None or (size, start) > best[:2]):
                best = (size, start, category)
        if best is not None:
            return best[2]
    for position in range(len(words) - 1, -1, -1):
        category = WORDS.get(words[position])
        if category:
            return category
    return None


def _brand_of(text: str) -> str | None:
    for marker, pattern, brand in _BRAND_PATTERNS:
        if marker in text and pattern.search(text):
            return brand
    return None


def _head_term(words: list[str]) -> str | None:
    for word in reversed(words):
        if word.isalpha() and word not in _FILLER and word not in TAG_WORDS and len(word) > 2:
            return word.lower()
    return None


def complexity_of(words: list[str], text: str) -> int:
    """1 (one plain item) to 5 (a long description of a multi-part set in several materials or colours)."""
    score = 1
    score += min(2, max(0, len(words) - 3) // 2)
    score += 1 if _SET_OF.search(text) else 0
    score += 1 if len([word for word in words if word in _COLOUR_OR_MATERIAL]) >= 2 else 0
    return min(score, 5)


class _Traits(NamedTuple):
    """What a description alone says of a product."""

    category: str
    brand: str | None
    is_seasonal: bool
    complexity: int
    tags: tuple[str, ...]
    head_term: str | None


@functools.lru_cache(maxsize=65536)
def _traits(text: str) -> _Traits:
    # Many stock codes share one description (a run's keys can be twenty times its descriptions).
    words = words_of(text)
    is_seasonal = any(word in SEASONAL_WORDS for word in words)
    category = "seasonal" if is_seasonal else _category_from(words) or OTHER
    return _Traits(
        category=category,
        brand=_brand_of(text),
        is_seasonal=is_seasonal,
        complexity=complexity_of(words, text) if words else 1,
        tags=tuple(
            sorted({TAG_WORDS[word] for word in words if word in TAG_WORDS} | ({"seasonal"} if is_seasonal else set()))
        ),
        head_term=_head_term(words) if category == OTHER else None,
    )


def categorise(stock_code: str | None, description: str | None) -> ProductRecord:
    """Category, brand, seasonal flag, complexity and tags of one product, from whole words only."""
    code = (stock_code or "").strip().upper()
    traits = _traits(" ".join((description or "").upper().split()))
    non_product = bool(code) and is_non_product_code(code)
    return ProductRecord(
        stock_code=stock_code,
        description=description,
        category="non_product" if non_product else traits.category,
        brand=traits.brand,
        is_seasonal=traits.is_seasonal,
        complexity=traits.complexity,
        tags=list(traits.tags),
        source=LOCAL_SOURCE,
        head_term=None if non_product else traits.head_term,
    )


def categorise_with_related(record: ProductRecord, related: Iterable[str]) -> ProductRecord:
    """Second chance for an uncategorised product: categorise the related terms of its head noun."""
    related_words = [word for term in related for word in words_of(term)]
    category = _category_from(related_words)
    if category is None:
        return record
    return record.model_copy(
        update={
            "category": category,
            "source": DATAMUSE_SOURCE,
            "tags": sorted(
                set(record.tags) | {f"related:{related_words[0].lower()}"} if related_words else record.tags
            ),
        }
    )


class ProductRules:
    """Offline twin: the whole-word rules alone."""

    def lookup(self, keys: Sequence[ProductKey]) -> Lookup[ProductRecord]:
        return offline_lookup([categorise(key.stock_code, key.description) for key in keys])

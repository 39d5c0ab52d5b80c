"""A seeded Vietnamese shop (products, variants, stock, prices in VND) and a loader for Amazon ESCI.

The generated shop sells what a Vietnamese marketplace sells: fashion (áo thun = T-shirt,
áo sơ mi = shirt, quần jean = jeans, váy đầm = dress, giày thể thao = sneakers, túi xách =
handbag, balo = backpack), electronics (điện thoại = phone, tai nghe = earphones, sạc dự phòng =
power bank) and home appliances (nồi cơm điện = rice cooker, quạt điện = electric fan). Each
product has one colour, a brand, a gender, a price drawn from its type's log-normal distribution
and one variant (with stock) per size. Most titles are Vietnamese, 10-20 % English or mixed.

The generator's attributes are the truth that search relevance and task success are judged by;
nothing downstream reads them except the judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.shop.text import fold


@dataclass(frozen=True)
class ProductType:
    """One kind of product: names, synonyms a shopper may type, sizes, genders and price (VND)."""

    key: str
    name_vi: str
    name_en: str
    category: str
    synonyms: tuple[str, ...]  # other names shoppers use, Vietnamese and English
    sizes: tuple[str, ...]  # ("",) for products without a size
    genders: tuple[str, ...]
    brands: tuple[str, ...]
    median_vnd: int
    sigma: float  # log-normal spread of the price
    features_vi: tuple[str, ...]  # descriptive words that appear in titles
    features_en: tuple[str, ...]


CLOTHES = ("S", "M", "L", "XL", "XXL")
SHOES = ("38", "39", "40", "41", "42", "43", "44")
ALL = ("nam", "nữ", "unisex")

PRODUCT_TYPES: dict[str, ProductType] = {
    t.key: t
    for t in [
        ProductType("ao_thun", "áo thun", "t-shirt", "fashion", ("áo phông", "áo tee", "tee", "t-shirt", "tshirt"),
                    CLOTHES, ALL, ("Coolmate", "Yody", "Routine", "Uniqlo", "Nike", "Adidas"), 180_000, 0.35,
                    ("cotton cổ tròn", "form rộng", "basic", "oversize", "in hình"), ("cotton crew neck", "oversized", "basic", "graphic")),
        ProductType("ao_so_mi", "áo sơ mi", "shirt", "fashion", ("sơ mi", "áo sơmi", "shirt"),
                    CLOTHES, ALL, ("Việt Tiến", "An Phước", "Owen", "Routine", "Uniqlo"), 320_000, 0.35,
                    ("công sở", "tay dài", "tay ngắn", "kẻ sọc", "linen"), ("long sleeve", "short sleeve", "oxford", "linen")),
        ProductType("quan_jean", "quần jean", "jeans", "fashion", ("quần jeans", "jeans", "jean", "quần bò"),
                    ("28", "29", "30", "31", "32", "34"), ALL, ("Levi's", "Yody", "Routine", "Coolmate", "Zara"), 420_000, 0.35,
                    ("ống suông", "slim fit", "ống rộng", "rách gối"), ("slim fit", "straight leg", "wide leg", "ripped")),
        ProductType("vay_dam", "váy đầm", "dress", "fashion", ("váy", "đầm", "dress", "đầm liền"),
                    CLOTHES[:4], ("nữ",), ("Elise", "Ivy Moda", "Zara", "Yody", "Canifa"), 380_000, 0.4,
                    ("hoa nhí", "dáng xòe", "công sở", "maxi dự tiệc"), ("floral", "a-line", "maxi", "party")),
        ProductType("giay_the_thao", "giày thể thao", "sneakers", "fashion", ("giày", "giày sneaker", "sneakers", "sneaker", "giày chạy bộ"),
                    SHOES, ALL, ("Biti's", "Nike", "Adidas", "Puma", "Ananas"), 850_000, 0.5,
                    ("chạy bộ", "đế êm", "cổ thấp", "thoáng khí"), ("running", "cushioned", "low-top", "breathable")),
        ProductType("tui_xach", "túi xách", "handbag", "fashion", ("túi", "giỏ xách", "handbag", "túi đeo chéo"),
                    ("",), ("nữ",), ("Charles & Keith", "Vascara", "Juno", "Pedro"), 450_000, 0.45,
                    ("da mềm", "đeo chéo", "công sở", "mini"), ("leather", "crossbody", "tote", "mini")),
        ProductType("balo", "balo", "backpack", "fashion", ("ba lô", "cặp", "backpack", "balô"),
                    ("",), ALL, ("Mikkor", "Tomtoc", "Adidas", "Xiaomi"), 350_000, 0.4,
                    ("chống nước", "đựng laptop", "đi học", "du lịch"), ("waterproof", "laptop", "school", "travel")),
        ProductType("dien_thoai", "điện thoại", "smartphone", "electronics", ("smartphone", "phone", "dế", "điện thoại di động"),
                    ("128GB", "256GB", "512GB"), ("unisex",), ("Samsung", "Xiaomi", "OPPO", "Apple", "Vivo", "Realme"), 6_500_000, 0.6,
                    ("chính hãng", "pin trâu", "camera kép", "màn hình AMOLED"), ("official", "long battery", "dual camera", "AMOLED")),
        ProductType("tai_nghe", "tai nghe", "earphones", "electronics", ("tai phone", "headphone", "earbuds", "tai nghe bluetooth", "headphones"),
                    ("",), ("unisex",), ("Sony", "JBL", "Xiaomi", "Apple", "Baseus", "Soundpeats"), 450_000, 0.7,
                    ("bluetooth", "chống ồn", "true wireless", "gaming"), ("bluetooth", "noise cancelling", "wireless", "gaming")),
        ProductType("sac_du_phong", "sạc dự phòng", "power bank", "electronics", ("pin dự phòng", "power bank", "cục sạc", "powerbank"),
                    ("10000mAh", "20000mAh"), ("unisex",), ("Anker", "Xiaomi", "Baseus", "Ugreen"), 350_000, 0.4,
                    ("sạc nhanh", "nhỏ gọn", "có dây liền"), ("fast charge", "compact", "built-in cable")),
        ProductType("noi_com_dien", "nồi cơm điện", "rice cooker", "home", ("nồi cơm", "rice cooker", "nồi điện"),
                    ("1L", "1.8L"), ("unisex",), ("Sharp", "Toshiba", "Sunhouse", "Cuckoo", "Panasonic"), 900_000, 0.45,
                    ("lòng niêu", "cao tần", "chống dính", "nắp gài"), ("ceramic pot", "induction", "non-stick")),
        ProductType("quat_dien", "quạt điện", "electric fan", "home", ("quạt", "quạt đứng", "fan", "quạt cây"),
                    ("",), ("unisex",), ("Senko", "Panasonic", "Asia", "Xiaomi", "Sunhouse"), 600_000, 0.45,
                    ("đứng", "có điều khiển", "tiết kiệm điện", "5 cánh"), ("standing", "remote control", "energy saving")),
    ]
}

# key -> (Vietnamese, English, other names shoppers type)
COLOURS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "den": ("đen", "black", ()),
    "trang": ("trắng", "white", ()),
    "do": ("đỏ", "red", ("đỏ đô",)),
    "xanh_duong": ("xanh dương", "blue", ("navy", "xanh navy", "xanh nước biển")),
    "xanh_la": ("xanh lá", "green", ("xanh lục", "xanh rêu")),
    "vang": ("vàng", "yellow", ()),
    "hong": ("hồng", "pink", ("hồng pastel",)),
    "xam": ("xám", "grey", ("ghi", "gray")),
    "nau": ("nâu", "brown", ()),
    "be": ("be", "beige", ("kem", "be sữa")),
}
# gender -> (words in titles, English, other words shoppers type)
GENDERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "nam": ("nam", "men's", ("con trai", "men", "đàn ông")),
    "nữ": ("nữ", "women's", ("con gái", "women", "phụ nữ")),
    "unisex": ("unisex", "unisex", ()),
}
COMPLEMENTS = {
    "ao_thun": ("quan_jean",), "ao_so_mi": ("quan_jean",), "quan_jean": ("ao_thun", "ao_so_mi"),
    "vay_dam": ("tui_xach",), "tui_xach": ("vay_dam",), "giay_the_thao": ("balo",), "balo": ("giay_the_thao",),
    "dien_thoai": ("tai_nghe", "sac_du_phong"), "tai_nghe": ("dien_thoai",), "sac_du_phong": ("dien_thoai",),
    "noi_com_dien": ("quat_dien",), "quat_dien": ("noi_com_dien",),
}
"""Types bought together (a phone and its earphones): graded 'complement' in search relevance."""

ESCI_GAINS = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}
"""Gains of the Amazon ESCI labels (exact, substitute, complement, irrelevant) used by nDCG."""


@dataclass(frozen=True)
class Product:
    """One product as listed: its title and the attributes the generator gave it (price in VND)."""

    product_id: str
    title: str
    ptype: str
    brand: str
    colour: str
    gender: str
    price_vnd: int
    language: str  # "vi", "en" or "mixed"


@dataclass(frozen=True)
class Variant:
    """A purchasable size of a product and its stock (units); size is "" when there is none."""

    sku: str
    product_id: str
    size: str
    stock: int


@dataclass
class Catalog:
    """A shop: products and their variants, with lookups by id."""

    products: tuple[Product, ...]
    variants: tuple[Variant, ...]
    _by_id: dict[str, Product] = field(init=False, repr=False)
    _variants_of: dict[str, tuple[Variant, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.product_id: p for p in self.products}
        grouped: dict[str, list[Variant]] = {}
        for v in self.variants:
            grouped.setdefault(v.product_id, []).append(v)
        self._variants_of = {k: tuple(vs) for k, vs in grouped.items()}

    def product(self, product_id: str) -> Product:
        """The product with this id (KeyError if there is none)."""
        return self._by_id[product_id]

    def variants_of(self, product_id: str) -> tuple[Variant, ...]:
        """The product's variants, in size order."""
        return self._variants_of.get(product_id, ())


def _price(rng: np.random.Generator, t: ProductType) -> int:
    """A shop-style price in VND: log-normal around the type's median, ending in 9,000 (or 90,000)."""
    raw = t.median_vnd * float(np.exp(rng.normal(0.0, t.sigma)))
    step = 100_000 if raw >= 2_000_000 else 10_000
    return max(step, int(round(raw / step)) * step) - step // 10


def _title(rng: np.random.Generator, t: ProductType, brand: str, colour: str, gender: str) -> tuple[str, str]:
    """A listing title and its language: Vietnamese (~85 %), English (~8 %) or mixed (~7 %)."""
    cvi, cen, _ = COLOURS[colour]
    gvi, gen, _ = GENDERS[gender]
    feat_vi = t.features_vi[rng.integers(len(t.features_vi))]
    feat_en = t.features_en[rng.integers(len(t.features_en))]
    gender_vi = "" if gender == "unisex" and t.category != "fashion" else f" {gvi}"
    gender_en = "" if gender == "unisex" and t.category != "fashion" else f"{gen} "
    roll = rng.random()
    if roll < 0.85:
        title, lang = f"{t.name_vi.capitalize()}{gender_vi} {brand} {feat_vi} màu {cvi}", "vi"
    elif roll < 0.93:
        title, lang = f"{brand} {gender_en}{feat_en} {t.name_en} {cen}", "en"
    else:
        title, lang = f"{t.name_vi.capitalize()}{gender_vi} {brand} {feat_en} {cen}", "mixed"
    return " ".join(title.split()), lang


def make_catalog(n_products: int, *, seed: int) -> Catalog:
    """A generated shop of ``n_products`` products spread over every type, deterministic per ``seed``.

    Stock per variant is 0-30 units (about one variant in ten is sold out).
    """
    if isinstance(n_products, bool) or not isinstance(n_products, int):
        raise TypeError(f"n_products must be an int, got {type(n_products).__name__}")
    if n_products < len(PRODUCT_TYPES):
        raise ValueError(f"n_products must be >= {len(PRODUCT_TYPES)} (one per type), got {n_products}")
    rng = np.random.default_rng([seed, 5001])
    types = list(PRODUCT_TYPES.values())
    colours = list(COLOURS)
    products, variants = [], []
    for i in range(n_products):
        t = types[i % len(types)]
        brand = t.brands[rng.integers(len(t.brands))]
        colour = colours[rng.integers(len(colours))]
        gender = t.genders[rng.integers(len(t.genders))]
        title, lang = _title(rng, t, brand, colour, gender)
        pid = f"P{i:05d}"
        products.append(Product(pid, title, t.key, brand, colour, gender, _price(rng, t), lang))
        for j, size in enumerate(t.sizes):
            stock = 0 if rng.random() < 0.1 else int(rng.integers(1, 31))
            variants.append(Variant(f"{pid}-{j}", pid, size, stock))
    return Catalog(tuple(products), tuple(variants))


def type_names(ptype: str) -> tuple[str, ...]:
    """Every name of a product type: its Vietnamese and English names and synonyms."""
    t = PRODUCT_TYPES[ptype]
    return (t.name_vi, t.name_en, *t.synonyms)


def colour_names(colour: str) -> tuple[str, ...]:
    """Every name of a colour: Vietnamese, English and the other names shoppers type."""
    vi, en, other = COLOURS[colour]
    return (vi, en, *other)


def lexicon() -> dict[str, dict[str, str]]:
    """The shop's vocabulary, diacritic-folded: {slot: {folded phrase: canonical value}}.

    Slots: ptype, colour, gender, brand. This is what a shop's search team curates (its synonym
    table); the understanding model may use it as features.
    """
    lex: dict[str, dict[str, str]] = {"ptype": {}, "colour": {}, "gender": {}, "brand": {}}
    for key in PRODUCT_TYPES:
        for name in type_names(key):
            lex["ptype"][fold(name)] = key
        for brand in PRODUCT_TYPES[key].brands:
            lex["brand"][fold(brand)] = brand
    for key in COLOURS:
        for name in colour_names(key):
            lex["colour"][fold(name)] = key
    for key, (vi, en, other) in GENDERS.items():
        for name in (vi, en.removesuffix("'s"), *other):
            lex["gender"][fold(name)] = key
    return lex


# ---------------------------------------------------------------- Amazon ESCI (Shopping Queries)

ESCI_PRODUCT_COLUMNS = ("product_id", "product_title", "product_locale")
ESCI_EXAMPLE_COLUMNS = ("query_id", "query", "product_id", "product_locale", "esci_label")


@dataclass
class EsciData:
    """The ESCI products and graded judgments of one locale (gain from ``ESCI_GAINS``)."""

    products: object  # pandas DataFrame: product_id, product_title, product_brand, product_color
    judgments: object  # pandas DataFrame: query_id, query, product_id, esci_label, gain
    dropped: dict[str, int]  # rows removed by each rule


def _read_columns(path: Path, required: tuple[str, ...]):
    """Read a parquet file, raising ValueError naming the file and the first missing column."""
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"ESCI file {path} does not exist")
    frame = pd.read_parquet(path)
    for column in required:
        if column not in frame.columns:
            raise ValueError(f"ESCI file {path} has no column {column!r}; expected {list(required)}")
    return frame


def load_esci(products_path: str | Path, examples_path: str | Path, *, locale: str = "us",
              small_version: bool = False) -> EsciData:
    """Load the Shopping Queries data set (``shopping_queries_dataset_{products,examples}.parquet``).

    Keeps one ``locale`` ("us", "es" or "jp"), optionally only the ``small_version`` rows, and only
    judgments whose product is in the products file; ``dropped`` counts each rule's removals.
    """
    products = _read_columns(Path(products_path), ESCI_PRODUCT_COLUMNS)
    examples = _read_columns(Path(examples_path), ESCI_EXAMPLE_COLUMNS)
    bad = sorted(set(examples["esci_label"]) - set(ESCI_GAINS))
    if bad:
        raise ValueError(f"ESCI file {examples_path} has esci_label values {bad}; expected E, S, C or I")
    dropped = {}
    keep = products["product_locale"] == locale
    dropped["products in another locale"] = int((~keep).sum())
    products = products[keep].drop_duplicates("product_id")
    keep = examples["product_locale"] == locale
    dropped["judgments in another locale"] = int((~keep).sum())
    examples = examples[keep]
    if small_version:
        if "small_version" not in examples.columns:
            raise ValueError(f"ESCI file {examples_path} has no column 'small_version'")
        keep = examples["small_version"] == 1
        dropped["judgments outside the small version"] = int((~keep).sum())
        examples = examples[keep]
    keep = examples["product_id"].isin(products["product_id"])
    dropped["judgments of unknown products"] = int((~keep).sum())
    examples = examples[keep]
    for column in ("product_brand", "product_color"):
        if column not in products.columns:
            products = products.assign(**{column: ""})
    judgments = examples[["query_id", "query", "product_id", "esci_label"]].assign(
        gain=examples["esci_label"].map(ESCI_GAINS)
    )
    columns = ["product_id", "product_title", "product_brand", "product_color"]
    return EsciData(products[columns].reset_index(drop=True), judgments.reset_index(drop=True), dropped)

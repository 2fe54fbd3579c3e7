"""Synthetic e-commerce data: clickstream, orders, items, users and reviews with a planted signal.

``generate_tables(users, days, end_date, seed)`` returns one ``pyarrow.Table`` per input contract of
``portrait.schemas`` (CLICKSTREAM, ORDERS, ITEMS, USERS, REVIEWS), each carrying exactly
``arrow_schema(contract)``.  The generator is pure (no I/O, no Spark) and vectorised with numpy and
pyarrow compute: loops run over days, personas or the fixed word lists, never over events or users.
The same arguments give the same tables, byte for byte.

Model of behaviour
------------------
Catalogue.  60 leaf categories in 10 top-level groups, each with a two-level path in the group's
language ("服饰 > 女装", "Electronics > Phones"), 8 brands per group (80 in all) and
``max(500, users // 5)`` items.  Category popularity and item popularity within a category are Zipf;
list prices are log-normal around a per-category median.  Titles are Chinese or English, built from
per-category nouns and per-group descriptors ("华为 Pro 手机 5G 旗舰", "Nike running shoes men
lightweight").

Users.  Every user has a persona (shares in ``PERSONA_SHARES``): loyal high spenders, bargain hunters
(coupon searches, discounts, many abandoned carts), window shoppers (many views, rare purchases), new
users (sign up inside the window and browse only from a few days before their signup, anonymously
until then) and churning users (activity fades linearly to zero at a churn day in the second half).
About 0.2% are bots: one logged-in crawl session a day at a fixed time, hundreds of views in catalogue
order at a fixed period, no searches, carts or purchases.  Each user has 1-3 favourite categories
that most sessions focus on, one device (``anonymous_id``, also on logged-in events), a usual
platform, a preferred language and demographics.

Intent (the latent state).  Each user carries a daily purchase intent
``x[u, d] = b_u + s_p * z[u, d]``: a persistent per-user level ``b_u`` (persona mean plus noise) and
a stationary AR(1) process ``z[u, d] = phi_p z[u, d-1] + sqrt(1 - phi_p^2) e`` with ``phi_p`` 0.90-0.93,
so a high or low phase lasts one to three weeks.  Intent drives what is observable (coefficients are
the ``_*_INTENT`` / ``_*_RESEARCH`` constants):

* purchase day ~ Bernoulli(lifecycle * sigmoid(buy_p + 1.3 x)); it has at least one session and one
  of its sessions ends with checkout (one order, one line per bought item);
* research phase: the three days before a purchase day.  The user then visits more (+0.6 on the log
  session rate), searches more, carts a little more and looks at promotion items (titles tagged
  "限时特惠", "flash sale" ...);
* sessions per day ~ Poisson(lifecycle * rate_p * exp(a_u + 0.5 x + 0.6 research)), where ``a_u`` is
  a per-user activity level independent of intent (busy browsers are not necessarily buyers);
* per view, add-to-cart and favourite logits rise with x (0.6 and 0.5 per unit);
* a search query is a category query ("连衣裙 夏季", "wireless earbuds", "Nike 帐篷") or, with
  probability sigmoid(iq_p + 0.8 rise + 3.0 research), an intent query built from "优惠券", "coupon",
  "折扣", "best price", "比价", "促销", "满减" ... (``INTENT_TERMS``), where ``rise`` is the increase of
  x over the last four days.  Bargain hunters use intent terms habitually (higher ``iq_p``), so the
  terms are informative but not decisive.

Planted signal.  Because ``z`` persists for weeks and ``b_u`` forever, "a paid order in (D, D+7]" is
predictable from behaviour up to D: recent carts, favourites, sessions and active days (current
intent), recency, frequency and spend of orders (``b_u`` and persona) and the activity trend
(churners and new users).  The text adds signal beyond RFM: intent-term searches and promotion
titles in the searched and viewed text mark the research phase before a purchase and rising intent.
Noise (Poisson counts, activity independent of intent, habitual coupon searches of bargain hunters,
fresh AR innovations after D) keeps the label far from separable.  Measured at users=4000, days=60,
training at D = end - 14 and testing at D = end - 7 over three seeds, a logistic regression reaches a
test AUC of 0.71-0.74 on RFM alone, about 0.74 on RFM plus a tf-idf bag of words of searches and
titles (text alone: about 0.69) and 0.79-0.80 on 7/30-day counts plus RFM, with or without the text;
about 16% of users have a paid order in a given week.

Events.  Sessions start at a diurnal local time of day (lunch and evening peaks); within a session
each interaction is a view, optionally followed by a favourite and an add-to-cart (sometimes removed
again later), searches open the session or come before later views, and checkout ("buy" events, one
per order line, all at the checkout instant) ends a purchase session.  Gaps are seconds to minutes.
About 8% of sessions without checkout are anonymous (``user_id`` null, ``anonymous_id`` set), like
new users' visits before signup; checkouts are always logged in so every order has a user.
``event_time`` is a UTC instant and ``dt`` its local date in ``time_zone`` (DST-aware); events whose
local date falls after ``end_date`` (sessions running past midnight on the last day) are dropped
together with any order line they would have produced.

Orders and reviews.  Every buy event is one order line with the same user, item, time and price;
quantity 1-3, a discount more often for bargain hunters, an order-level status (paid ~90%, refunded
~7%, cancelled ~3%).  Some paid lines get a review a few days later (kept only if its local date is
within the window) whose rating drives positive or negative Chinese or English text.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from portrait import schemas

__all__ = [
    "BOT_SHARE",
    "PERSONAS",
    "PERSONA_SHARES",
    "arrow_schema",
    "generate_tables",
]

# --------------------------------------------------------------------------------------------------
# Behaviour constants.  Shares of the non-bot population; bots are BOT_SHARE of all users on top.
# --------------------------------------------------------------------------------------------------
PERSONAS: tuple[str, ...] = ("loyal", "bargain", "window", "new", "churning", "bot")
PERSONA_SHARES: dict[str, float] = {
    "loyal": 0.15,  # loyal high spenders: frequent visits, frequent large orders
    "bargain": 0.22,  # bargain hunters: coupon searches, discounts, abandoned carts
    "window": 0.33,  # window shoppers: browse a lot, rarely buy
    "new": 0.12,  # new users: sign up inside the window
    "churning": 0.18,  # churning users: activity fades to zero in the second half
}
BOT_SHARE = 0.002  # crawlers: hundreds of regular views a day, never buy

_LOYAL, _BARGAIN, _WINDOW, _NEW, _CHURN, _BOT = range(6)

# Per-persona parameters, indexed by persona code (bots are generated separately; their row is unused).
#                          loyal  bargain window  new   churn  bot
_INTENT_MEAN = np.array([0.60, 0.00, -0.70, 0.10, 0.20, 0.0])  # mean of the user level b_u
_INTENT_SD = np.array([1.00, 1.00, 0.90, 1.00, 1.00, 0.0])  # scale of the AR(1) part
_PHI = np.array([0.93, 0.90, 0.92, 0.90, 0.92, 0.0])  # day-to-day persistence of intent
_SESSION_RATE = np.array([0.22, 0.12, 0.08, 0.13, 0.11, 0.0])  # sessions per day at x = 0
_BUY_BASE = np.array([-3.4, -3.7, -4.9, -3.6, -3.5, -99.0])  # purchase-day logit at x = 0
_CART_BASE = np.array([-3.2, -2.8, -3.7, -3.3, -3.3, -99.0])  # add-to-cart logit per view at x = 0
_FAV_BASE = np.array([-3.2, -3.3, -2.5, -3.1, -3.2, -99.0])  # favourite logit per view at x = 0
_INTENT_QUERY_BASE = np.array([-4.0, -3.0, -4.0, -4.0, -4.0, -99.0])  # intent-term search logit
_VIEWS_PER_SESSION = np.array([3.0, 3.5, 4.5, 3.0, 2.5, 0.0])  # mean interactions beyond the first
_DISCOUNT_SHARE = np.array([0.10, 0.55, 0.15, 0.30, 0.12, 0.0])  # order lines with a discount
_REVIEW_SHARE = np.array([0.30, 0.15, 0.20, 0.18, 0.12, 0.0])  # paid lines that get a review

# Planted signal: effects of intent x, of the research phase before a purchase and of rising intent.
_SESSION_INTENT = 0.5  # log sessions per day per unit of intent
_SESSION_RESEARCH = 0.6  # extra log sessions per day while researching a purchase
_BUY_INTENT = 1.3  # purchase-day logit per unit of intent
_CART_INTENT = 0.6  # add-to-cart logit per unit of intent
_CART_RESEARCH = 0.4  # extra add-to-cart logit while researching
_CART_CHECKOUT = 1.0  # extra add-to-cart logit in a checkout session
_FAV_INTENT = 0.5  # favourite logit per unit of intent
_SEARCH_RESEARCH = 1.0  # extra logit of searching in a session while researching
_INTENT_QUERY_RISE = 0.8  # intent-term query logit per unit of intent rise over four days
_INTENT_QUERY_RESEARCH = 3.0  # extra intent-term query logit while researching
_PROMO_RESEARCH = 2.2  # extra logit of viewing a promotion item while researching

_ORDER_STATUS_SHARE = {"paid": 0.90, "refunded": 0.07, "cancelled": 0.03}
_CHANNELS = ("organic", "ads", "email", "social", "direct")
_CHANNEL_SHARE = np.array([0.40, 0.18, 0.07, 0.10, 0.25])
_BARGAIN_CHANNEL_SHARE = np.array([0.28, 0.27, 0.20, 0.10, 0.15])  # bargain hunters follow promotions
_PLATFORMS = ("app", "web", "mini_program")
_PLATFORM_SHARE = np.array([0.55, 0.25, 0.20])
_ANONYMOUS_SESSION_SHARE = 0.08  # logged-out sessions among those without checkout
_RESEARCH_DAYS = 3  # days before a purchase in which the user researches it
_HOUR_WEIGHTS = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.2, 0.5, 1.0, 1.6, 2.2, 2.6, 3.0,
     3.6, 3.2, 2.8, 2.8, 2.9, 3.0, 3.4, 4.2, 5.2, 5.6, 4.6, 2.4]
)  # local hour-of-day profile of session starts: lunch and evening peaks

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND

# --------------------------------------------------------------------------------------------------
# Catalogue word lists.  Per group: path language, brands, descriptors (zh, en) and six leaves of
# (path name, Chinese noun, English noun, median price).
# --------------------------------------------------------------------------------------------------
_Leaf = tuple[str, str, str, float]
_Group = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[_Leaf, ...]]
_GROUPS: tuple[_Group, ...] = (
    ("服饰", "zh",
     ("优衣库", "ZARA", "太平鸟", "H&M", "森马", "波司登", "Levi's", "海澜之家"),
     ("夏季", "新款", "宽松", "修身", "纯棉", "韩版", "显瘦", "加厚"),
     ("summer", "new", "loose fit", "slim", "cotton", "casual", "classic", "warm"),
     (("女装", "连衣裙", "dress", 199.0), ("男装", "衬衫", "shirt", 159.0), ("内衣", "内衣", "underwear", 89.0),
      ("童装", "儿童卫衣", "kids hoodie", 129.0), ("外套", "羽绒服", "down jacket", 499.0),
      ("裤装", "牛仔裤", "jeans", 169.0))),
    ("Electronics", "en",
     ("华为", "小米", "Apple", "Samsung", "OPPO", "vivo", "联想", "Sony"),
     ("5G", "全网通", "旗舰", "降噪", "长续航", "高清", "轻薄", "快充"),
     ("5G", "unlocked", "flagship", "noise cancelling", "long battery", "HD", "lightweight", "fast charging"),
     (("Phones", "手机", "phone", 2999.0), ("Laptops", "笔记本电脑", "laptop", 5999.0),
      ("Tablets", "平板电脑", "tablet", 2499.0), ("Headphones", "蓝牙耳机", "wireless earbuds", 399.0),
      ("Smartwatches", "智能手表", "smartwatch", 1299.0), ("Cameras", "相机", "camera", 4599.0))),
    ("美妆", "zh",
     ("兰蔻", "雅诗兰黛", "欧莱雅", "完美日记", "花西子", "SK-II", "资生堂", "MAC"),
     ("保湿", "补水", "美白", "控油", "持久", "敏感肌", "滋润", "清爽"),
     ("moisturizing", "hydrating", "brightening", "oil control", "long lasting", "sensitive skin", "nourishing", "fresh"),
     (("面部护肤", "面霜", "face cream", 259.0), ("彩妆", "口红", "lipstick", 189.0), ("香水", "香水", "perfume", 459.0),
      ("面膜", "面膜", "sheet mask", 99.0), ("洗发护发", "洗发水", "shampoo", 69.0), ("防晒", "防晒霜", "sunscreen", 129.0))),
    ("Home", "en",
     ("IKEA", "无印良品", "网易严选", "苏泊尔", "双立人", "全友", "林氏木业", "罗莱"),
     ("北欧", "简约", "实木", "大容量", "不粘", "家用", "ins风", "加厚"),
     ("nordic", "minimalist", "solid wood", "large capacity", "non-stick", "home", "modern", "durable"),
     (("Furniture", "沙发", "sofa", 1999.0), ("Bedding", "四件套", "bedding set", 299.0), ("Kitchenware", "炒锅", "wok", 189.0),
      ("Storage", "收纳箱", "storage box", 59.0), ("Lighting", "台灯", "desk lamp", 149.0), ("Decor", "装饰画", "wall art", 129.0))),
    ("食品", "zh",
     ("三只松鼠", "良品铺子", "伊利", "蒙牛", "Nestle", "农夫山泉", "Starbucks", "百草味"),
     ("进口", "礼盒", "有机", "低糖", "整箱", "新鲜", "特产", "网红"),
     ("imported", "gift box", "organic", "low sugar", "family pack", "fresh", "premium", "bulk"),
     (("零食", "坚果", "mixed nuts", 49.0), ("茶饮", "茶叶", "green tea", 129.0), ("咖啡", "咖啡豆", "coffee beans", 89.0),
      ("乳品", "牛奶", "milk", 69.0), ("生鲜", "水果", "fresh fruit", 79.0), ("酒水", "红酒", "red wine", 259.0))),
    ("Sports", "en",
     ("Nike", "Adidas", "李宁", "安踏", "Decathlon", "Under Armour", "Puma", "特步"),
     ("男款", "女款", "轻便", "透气", "减震", "专业", "防水", "耐磨"),
     ("men", "women", "lightweight", "breathable", "cushioned", "professional", "waterproof", "durable"),
     (("Running", "跑步鞋", "running shoes", 599.0), ("Fitness", "瑜伽垫", "yoga mat", 129.0), ("Outdoor", "帐篷", "tent", 499.0),
      ("Cycling", "自行车", "bike", 1599.0), ("Swimming", "泳衣", "swimsuit", 159.0), ("Ball Sports", "篮球", "basketball", 199.0))),
    ("母婴", "zh",
     ("飞鹤", "美赞臣", "Pampers", "花王", "LEGO", "好孩子", "贝亲", "Babycare"),
     ("婴儿", "新生儿", "加大码", "超薄", "安全", "早教", "防胀气", "1段"),
     ("baby", "newborn", "XL", "ultra thin", "safe", "educational", "anti-colic", "stage 1"),
     (("奶粉", "奶粉", "infant formula", 329.0), ("纸尿裤", "纸尿裤", "diapers", 139.0), ("玩具", "积木", "building blocks", 199.0),
      ("童车", "婴儿车", "stroller", 899.0), ("喂养用品", "奶瓶", "baby bottle", 89.0), ("孕妈用品", "孕妇装", "maternity dress", 159.0))),
    ("Books", "en",
     ("中信出版社", "人民文学出版社", "机械工业出版社", "Penguin", "商务印书馆", "HarperCollins", "新星出版社", "O'Reilly"),
     ("精装", "畅销", "正版", "全套", "新版", "经典", "中英双语", "典藏"),
     ("hardcover", "bestseller", "original", "complete set", "new edition", "classic", "bilingual", "collector's"),
     (("Fiction", "小说", "novel", 45.0), ("Business", "管理书籍", "business book", 59.0), ("Children", "绘本", "picture book", 39.0),
      ("Education", "教材", "textbook", 49.0), ("Comics", "漫画", "comic", 35.0), ("Technology", "编程书", "programming book", 89.0))),
    ("家电", "zh",
     ("美的", "格力", "海尔", "海信", "TCL", "西门子", "九阳", "Dyson"),
     ("变频", "一级能效", "智能", "大容量", "静音", "家用", "4K", "除菌"),
     ("inverter", "energy efficient", "smart", "large capacity", "quiet", "home", "4K", "antibacterial"),
     (("冰箱", "冰箱", "refrigerator", 3299.0), ("洗衣机", "洗衣机", "washing machine", 2399.0), ("空调", "空调", "air conditioner", 2899.0),
      ("电视", "电视", "smart TV", 3599.0), ("小家电", "空气炸锅", "air fryer", 299.0), ("厨电", "电饭煲", "rice cooker", 399.0))),
    ("Pets", "en",
     ("Royal Canin", "渴望", "麦富迪", "比瑞吉", "网易天成", "Pedigree", "Whiskas", "伯纳天纯"),
     ("成犬", "幼猫", "全价", "无谷", "除臭", "四季通用", "天然", "低敏"),
     ("adult dog", "kitten", "complete", "grain free", "odor control", "all season", "natural", "hypoallergenic"),
     (("Dog Food", "狗粮", "dog food", 189.0), ("Cat Food", "猫粮", "cat food", 159.0), ("Cat Litter", "猫砂", "cat litter", 59.0),
      ("Pet Toys", "宠物玩具", "pet toy", 39.0), ("Pet Beds", "宠物窝", "pet bed", 99.0), ("Pet Health", "驱虫药", "dewormer", 79.0))),
)
# Model tokens per group, same count each; empty strings make a model-less title more likely.
_MODEL_TOKENS: tuple[tuple[str, ...], ...] = (
    ("", "", "", "2024款", "新款", "Plus"),
    ("Pro", "Max", "Mate 60", "X9", "Ultra", "Air"),
    ("", "", "", "50ml", "套装", "Mini"),
    ("", "", "", "2024款", "Plus", "Pro"),
    ("", "", "", "500g", "1kg", "6瓶装"),
    ("", "", "", "Pro", "2024款", "Air"),
    ("", "", "", "S号", "M号", "L号"),
    ("", "", "", "第2版", "Vol. 1", "Vol. 2"),
    ("", "", "Pro", "X7", "V2", "2024款"),
    ("", "", "", "2kg", "10kg", "Mini"),
)
# Deal tags in the titles of promotion items.
_DEAL_TAGS_ZH = ("限时特惠", "特价", "秒杀价", "领券立减")
_DEAL_TAGS_EN = ("limited offer", "special price", "flash sale", "clearance")
_INTENT_TERMS_ZH = ("优惠券", "折扣", "比价", "促销", "满减", "秒杀", "包邮", "券后价")
_INTENT_TERMS_EN = ("coupon", "best price", "discount", "deal", "promo code", "sale", "cheapest", "free shipping")
# All intent terms, for tests and for anyone checking the planted signal.
INTENT_TERMS: tuple[str, ...] = _INTENT_TERMS_ZH + _INTENT_TERMS_EN
_REVIEW_PHRASES = {
    ("zh", "pos"): ("质量很好", "物流很快", "性价比高", "非常满意", "包装精美", "和描述一致", "会回购的", "推荐购买"),
    ("zh", "mid"): ("还可以", "一般般", "中规中矩", "价格有点贵", "物流稍慢", "凑合用"),
    ("zh", "neg"): ("质量太差", "和图片不符", "不推荐", "做工粗糙", "客服态度差", "已经坏了"),
    ("en", "pos"): ("great quality", "fast delivery", "good value", "very satisfied", "works as described", "would buy again", "highly recommend"),
    ("en", "mid"): ("it is okay", "average quality", "a bit pricey", "shipping was slow", "does the job"),
    ("en", "neg"): ("poor quality", "not as pictured", "do not recommend", "broke after a week", "cheap material", "terrible service"),
}


# --------------------------------------------------------------------------------------------------
# Schema mapping
# --------------------------------------------------------------------------------------------------
def _arrow_type(data_type: T.DataType) -> pa.DataType:
    """Arrow type that Spark reads back as ``data_type`` (timestamps are UTC instants in microseconds)."""
    simple: dict[type, pa.DataType] = {
        T.StringType: pa.string(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
        T.TimestampNTZType: pa.timestamp("us"),
        T.DateType: pa.date32(),
        T.BooleanType: pa.bool_(),
        T.ByteType: pa.int8(),
        T.ShortType: pa.int16(),
        T.IntegerType: pa.int32(),
        T.LongType: pa.int64(),
        T.FloatType: pa.float32(),
        T.DoubleType: pa.float64(),
        T.BinaryType: pa.binary(),
    }
    for spark_type, arrow in simple.items():
        if type(data_type) is spark_type:
            return arrow
    if isinstance(data_type, T.DecimalType):
        return pa.decimal128(data_type.precision, data_type.scale)
    if isinstance(data_type, T.ArrayType):
        return pa.list_(pa.field("element", _arrow_type(data_type.elementType), data_type.containsNull))
    if isinstance(data_type, T.MapType):
        return pa.map_(_arrow_type(data_type.keyType), _arrow_type(data_type.valueType))
    if isinstance(data_type, T.StructType):
        return pa.struct([_arrow_field(f) for f in data_type.fields])
    raise TypeError(f"no Arrow type for Spark type {data_type!r}")


def _arrow_field(field: T.StructField) -> pa.Field:
    comment = field.metadata.get("comment") if field.metadata else None
    metadata = {"comment": comment} if comment else None
    return pa.field(field.name, _arrow_type(field.dataType), field.nullable, metadata=metadata)


def arrow_schema(contract: schemas.TableContract | T.StructType) -> pa.Schema:
    """The Arrow schema of a table contract: same column names, order, nullability and comments."""
    struct = contract.schema if isinstance(contract, schemas.TableContract) else contract
    return pa.schema([_arrow_field(f) for f in struct.fields])


# --------------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rank_in_groups(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 for each group of the given sizes, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _choice(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    """Category indices drawn with the given probabilities (inverse CDF; stable across numpy versions)."""
    cdf = np.cumsum(probs / probs.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int32)


def _mix64(values: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64 finaliser of ``values ^ salt``: a bijection on uint64, so distinct inputs stay distinct."""
    z = values.astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(values: np.ndarray, prefix: str) -> pa.Array:
    """Strings ``prefix + 16 hex digits`` built in one pass over a byte matrix (no per-row Python)."""
    n = len(values)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = len(head) + 16
    raw = values.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, width), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :: 2] = _HEX_DIGITS[raw >> 4]
    chars[:, len(head) + 1 :: 2] = _HEX_DIGITS[raw & 15]
    if n * width >= 2**31:
        raise ValueError("too many ids for one Arrow string array")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1)))


def _numbered_ids(count: int, prefix: str, digits: int, order: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + zero-padded number; ``order`` gives the number of each row (default 1..count)."""
    numbers = np.arange(1, count + 1, dtype=np.int64) if order is None else order.astype(np.int64) + 1
    padded = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=digits, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), padded, "")


def _join_words(*parts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Space-join word arrays element-wise, dropping empty words."""
    joined = pc.binary_join_element_wise(*parts, " ")
    joined = pc.replace_substring_regex(joined, pattern=r"\s+", replacement=" ")
    return pc.utf8_trim_whitespace(joined)


def _take(values: pa.Array, indices: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``values[indices]`` with nulls where ``valid`` is False."""
    mask = None if valid is None else ~valid
    idx = pa.array(np.where(valid, indices, 0) if valid is not None else indices, type=pa.int64(), mask=mask)
    return values.take(idx)


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _local_dates(instants_us: np.ndarray, time_zone: str) -> np.ndarray:
    """Local calendar date (days since 1970-01-01) of UTC instants in ``time_zone``, DST-aware."""
    utc = pd.DatetimeIndex(instants_us.astype("datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(time_zone).tz_localize(None)
    return local.values.astype("datetime64[D]").astype(np.int64).astype(np.int32)


def _local_midnights_us(first_day: _dt.date, count: int, time_zone: str) -> np.ndarray:
    """UTC instants (µs) of local midnight for ``count`` consecutive days; a DST gap moves it forward."""
    naive = pd.date_range(pd.Timestamp(first_day), periods=count, freq="D")
    local = naive.tz_localize(time_zone, ambiguous=np.zeros(count, dtype=bool), nonexistent="shift_forward")
    return local.tz_convert("UTC").as_unit("us").asi8.astype(np.int64)


def _make_table(contract: schemas.TableContract, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(contract)
    arrays = [_as_array(columns[f.name]).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------------
class _Catalogue:
    """Static word lists flattened into arrays, plus the sampled items."""

    def __init__(self) -> None:
        leaves = [(g, leaf) for g, group in enumerate(_GROUPS) for leaf in group[5]]
        self.n_categories = len(leaves)
        self.cat_group = np.array([g for g, _ in leaves], dtype=np.int32)
        self.cat_ids = pa.array([f"c{c + 1:03d}" for c in range(self.n_categories)])
        self.cat_paths = pa.array([f"{_GROUPS[g][0]} > {leaf[0]}" for g, leaf in leaves])
        self.noun_zh = pa.array([leaf[1] for _, leaf in leaves])
        self.noun_en = pa.array([leaf[2] for _, leaf in leaves])
        self.median_price = np.array([leaf[3] for _, leaf in leaves])
        self.brands = pa.array([b for group in _GROUPS for b in group[2]])
        self.brands_per_group = len(_GROUPS[0][2])
        self.desc_zh = pa.array([w for group in _GROUPS for w in group[3]])
        self.desc_en = pa.array([w for group in _GROUPS for w in group[4]])
        self.desc_per_group = len(_GROUPS[0][3])
        self.model_tokens = pa.array([m for group in _MODEL_TOKENS for m in group])
        self.models_per_group = len(_MODEL_TOKENS[0])
        self.intent_zh = pa.array(_INTENT_TERMS_ZH)
        self.intent_en = pa.array(_INTENT_TERMS_EN)


class _Items:
    """Items sorted by category (internal index); ids are a random permutation of numbers."""

    def __init__(self, rng: np.random.Generator, cat: _Catalogue, n_items: int) -> None:
        n_cat = cat.n_categories
        # Zipf popularity of categories: a random category gets rank 1.
        cat_rank = rng.permutation(n_cat)
        self.cat_weight = 1.0 / (cat_rank + 1.0) ** 0.8
        self.cat_weight /= self.cat_weight.sum()
        # Popular categories also have more items; every category has at least three.
        counts = 3 + rng.multinomial(n_items - 3 * n_cat, self.cat_weight)
        self.n = n_items
        self.category = np.repeat(np.arange(n_cat, dtype=np.int32), counts)
        self.cat_start = np.cumsum(counts) - counts
        # Zipf popularity of items within their category, a random item taking rank 1.
        within = _rank_in_groups(counts)
        shuffled = np.argsort(self.category + rng.random(n_items), kind="stable")
        rank = np.empty(n_items, dtype=np.int64)
        rank[shuffled] = within
        weight = 1.0 / (rank + 1.0) ** 1.1
        # Promotion items (about 12%, at least one per category) carry a deal tag in their title;
        # users about to buy look at deals more (see _human_events).
        self.promo = (rng.random(n_items) < 0.12) | (rank == counts[self.category] // 2)
        self.cdf = self._cdf(weight)
        self.promo_cdf = self._cdf(weight * self.promo)
        # Brand from the category's group; price log-normal around the category median, shop-style.
        group = cat.cat_group[self.category]
        self.brand = group * cat.brands_per_group + rng.integers(0, cat.brands_per_group, n_items)
        raw = np.exp(np.log(cat.median_price[self.category]) + rng.normal(0.0, 0.45, n_items))
        self.price = np.where(raw >= 10, np.floor(raw) + 0.9, np.round(raw, 2))
        # Ids: numbers in random order, so id order carries no category information.
        self.number = rng.permutation(n_items)
        self.by_number = np.argsort(self.number)
        self.ids = _numbered_ids(n_items, "i", 6, self.number)
        self.title = self._titles(rng, cat, group)

    def _cdf(self, weight: np.ndarray) -> np.ndarray:
        """Per-category CDF of ``weight`` offset by the category index, so one searchsorted samples
        items of many categories at once; zero-weight items are never drawn."""
        n_cat = len(self.cat_start)
        totals = np.bincount(self.category, weights=weight, minlength=n_cat)
        counts = np.bincount(self.category, minlength=n_cat)
        cum = np.cumsum(weight) - np.repeat(np.cumsum(totals) - totals, counts)
        cdf = cum / totals[self.category]
        cdf[self.cat_start + counts - 1] = 1.0
        return self.category + cdf

    def _titles(self, rng: np.random.Generator, cat: _Catalogue, group: np.ndarray) -> pa.Array:
        """Brand, model, noun and two different descriptors of the item's group, Chinese or English."""
        n = self.n
        per = cat.desc_per_group
        d1 = rng.integers(0, per, n)
        d2 = (d1 + 1 + rng.integers(0, per - 1, n)) % per
        d1, d2 = pa.array(group * per + d1), pa.array(group * per + d2)
        model = cat.model_tokens.take(pa.array(group * cat.models_per_group + rng.integers(0, cat.models_per_group, n)))
        noun = pa.array(self.category)
        deal = pa.array(rng.integers(0, len(_DEAL_TAGS_ZH), n))
        no_deal = pa.scalar("", pa.string())
        deal_zh = pc.if_else(pa.array(self.promo), pa.array(_DEAL_TAGS_ZH).take(deal), no_deal)
        deal_en = pc.if_else(pa.array(self.promo), pa.array(_DEAL_TAGS_EN).take(deal), no_deal)
        brand = cat.brands.take(pa.array(self.brand))
        title_zh = _join_words(
            brand, model, cat.noun_zh.take(noun), cat.desc_zh.take(d1), cat.desc_zh.take(d2), deal_zh
        )
        title_en = _join_words(
            brand, cat.noun_en.take(noun), cat.desc_en.take(d1), cat.desc_en.take(d2), model, deal_en
        )
        return pc.if_else(pa.array(rng.random(n) < 0.6), title_zh, title_en)

    def sample(self, rng: np.random.Generator, category: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
        """One Zipf-popular item of each given category, a promotion item where ``promo`` is set."""
        u = np.maximum(1.0 - rng.random(len(category)), 1e-9)  # in (0, 1]: never leaves its category
        item = np.searchsorted(self.cdf, category + u, side="left")
        if promo is not None:
            item = np.where(promo, np.searchsorted(self.promo_cdf, category + u, side="left"), item)
        return item.astype(np.int32)


# --------------------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------------------
def generate_tables(
    users: int,
    days: int,
    end_date: _dt.date,
    seed: int,
    time_zone: str = "Asia/Shanghai",
) -> dict[str, pa.Table]:
    """Synthetic clickstream, orders, items, users and reviews for ``days`` days ending on ``end_date``.

    Returns a dict keyed "clickstream", "orders", "items", "users", "reviews"; each table has exactly
    ``arrow_schema`` of its contract.  Deterministic for given arguments.
    """
    if users < 1 or days < 1 or seed < 0:
        raise ValueError("users and days must be at least 1 and seed non-negative")
    if isinstance(end_date, _dt.datetime):
        end_date = end_date.date()
    first_day = end_date - _dt.timedelta(days=days - 1)
    # Independent streams per part, so e.g. review sampling never shifts the clickstream.
    streams = np.random.SeedSequence([seed, 0x70727472]).spawn(8)
    rng_items, rng_users, rng_intent, rng_sess, rng_inter, rng_text, rng_orders, rng_bots = (
        np.random.default_rng(s) for s in streams
    )
    # Salt of the hashed ids, so different seeds give different ids.
    salt = int(np.random.SeedSequence([seed, 0x1D5]).generate_state(1, dtype=np.uint64)[0])

    cat = _Catalogue()
    items = _Items(rng_items, cat, max(500, users // 5))
    midnights = _local_midnights_us(first_day, days + 1, time_zone)
    first_dt = (first_day - _dt.date(1970, 1, 1)).days
    last_dt = first_dt + days - 1

    pop = _users(rng_users, users, days, items, salt)
    grid = _user_days(rng_intent, pop, days)
    sess = _sessions(rng_sess, pop, grid, items, midnights)
    ev = _human_events(rng_inter, pop, grid, sess, items)
    bot = _bot_events(rng_bots, pop, days, items, midnights)
    ev = {k: np.concatenate([ev[k], bot[k]]) for k in ev}

    # Local dates; drop what spills past the last local day (sessions running over midnight).
    ev_dt = _local_dates(ev["time"], time_zone)
    keep = (ev_dt >= first_dt) & (ev_dt <= last_dt)
    ev = {k: v[keep] for k, v in ev.items()}
    ev_dt = ev_dt[keep]
    order = np.lexsort((ev["seq"], ev["session"], ev["time"]))
    ev = {k: v[order] for k, v in ev.items()}
    ev_dt = ev_dt[order]

    clickstream = _clickstream_table(rng_text, cat, items, pop, grid, ev, ev_dt, salt)
    orders, paid_lines = _orders_table(rng_orders, cat, items, pop, ev, ev_dt, salt)
    reviews = _reviews_table(rng_orders, pop, items, paid_lines, last_dt, time_zone, salt)
    return {
        "clickstream": clickstream,
        "orders": orders,
        "items": _make_table(
            schemas.ITEMS,
            {
                "item_id": items.ids,
                "title": items.title,
                "category_id": cat.cat_ids.take(pa.array(items.category)),
                "category_path": cat.cat_paths.take(pa.array(items.category)),
                "brand": cat.brands.take(pa.array(items.brand)),
                "price": pa.array(items.price),
            },
        ).take(pa.array(items.by_number)),  # rows in id order
        "users": _users_table(rng_users, pop, first_dt),
        "reviews": reviews,
    }


# --------------------------------------------------------------------------------------------------
# Users and their daily intent
# --------------------------------------------------------------------------------------------------
class _Population:
    """Per-user attributes as arrays indexed by user number."""

    persona: np.ndarray
    zh: np.ndarray
    platform: np.ndarray
    fav_cats: np.ndarray
    fav_cdf: np.ndarray
    level: np.ndarray
    activity: np.ndarray
    signup_day: np.ndarray  # window day of signup (new users), negative before the window
    churn_day: np.ndarray
    ids: pa.Array
    device: pa.Array


def _users(rng: np.random.Generator, n: int, days: int, items: _Items, salt: int) -> _Population:
    p = _Population()
    n_bot = round(n * BOT_SHARE) or (1 if n >= 100 else 0)  # at least one bot in any sizeable run
    shares = np.array([PERSONA_SHARES[name] for name in PERSONAS[:-1]])
    persona = np.concatenate([_choice(rng, shares, n - n_bot), np.full(n_bot, _BOT, dtype=np.int32)])
    p.persona = rng.permutation(persona).astype(np.int8)
    p.zh = rng.random(n) < 0.75  # language of the user's searches and reviews
    p.platform = _choice(rng, _PLATFORM_SHARE, n)
    # 1-3 favourite categories drawn by category popularity, weighted 60/30/10 (fewer when k < 3).
    k = 1 + _choice(rng, np.array([0.35, 0.40, 0.25]), n)
    p.fav_cats = _choice(rng, items.cat_weight, n * 3).reshape(n, 3)
    weights = np.array([0.6, 0.3, 0.1])[None, :] * (np.arange(3)[None, :] < k[:, None])
    p.fav_cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
    # Persistent intent level per user, and an activity level independent of intent.
    p.level = _INTENT_MEAN[p.persona] + rng.normal(0.0, 0.5, n)
    p.activity = rng.normal(0.0, 0.4, n)
    # Signup: new users inside the window (from a quarter of the way in), others before it.
    before = -1 - np.floor(rng.exponential(420.0, n)).astype(np.int64)
    inside = rng.integers(int(days * 0.25), days, n) if days > 1 else np.zeros(n, dtype=np.int64)
    p.signup_day = np.where(p.persona == _NEW, inside, np.where(p.persona == _BOT, -1 - rng.integers(0, 60, n), before))
    # Churners fade out linearly from the middle of the window to a churn day in its second half.
    half = days // 2
    p.churn_day = rng.integers(half + 1, max(half + 2, int(days * 0.9)), n)
    p.ids = _numbered_ids(n, "u", 7)
    p.device = _hex_ids(_mix64(np.arange(n, dtype=np.uint64), salt ^ 0xD0), "dev-")
    return p


class _Grid:
    """User x day arrays: intent, lifecycle, purchase days and research phases."""

    x: np.ndarray
    life: np.ndarray
    can_buy: np.ndarray
    buy: np.ndarray
    research: np.ndarray
    rise: np.ndarray
    sessions: np.ndarray


def _user_days(rng: np.random.Generator, pop: _Population, days: int) -> _Grid:
    n = len(pop.persona)
    g = _Grid()
    phi = _PHI[pop.persona]
    z = np.empty((n, days))
    z[:, 0] = rng.standard_normal(n)  # stationary start: the window opens mid-history
    innov = rng.standard_normal((n, days))
    scale = np.sqrt(1.0 - phi**2)
    for d in range(1, days):  # loop over days only; each step is vectorised over users
        z[:, d] = phi * z[:, d - 1] + scale * innov[:, d]
    g.x = pop.level[:, None] + _INTENT_SD[pop.persona][:, None] * z

    day = np.arange(days)[None, :]
    life = np.ones((n, days))
    is_new = (pop.persona == _NEW)[:, None]
    signup = pop.signup_day[:, None]
    # New users browse (anonymously, lightly) in the five days before signing up, nothing earlier.
    life = np.where(is_new & (day < signup), np.where(day >= signup - 5, 0.3, 0.0), life)
    is_churn = (pop.persona == _CHURN)[:, None]
    half = days // 2
    fade = np.clip((pop.churn_day[:, None] - day) / np.maximum(pop.churn_day[:, None] - half, 1), 0.0, 1.0)
    life = np.where(is_churn & (day >= half), fade, life)
    life = np.where((pop.persona == _BOT)[:, None], 0.0, life)  # bots are generated separately
    g.life = life
    g.can_buy = life * (~is_new | (day >= signup))

    persona = pop.persona[:, None]
    p_buy = g.can_buy * _sigmoid(_BUY_BASE[persona] + _BUY_INTENT * g.x)
    g.buy = rng.random((n, days)) < p_buy
    # Research phase: a purchase within the next _RESEARCH_DAYS days.
    research = np.zeros((n, days), dtype=bool)
    for lag in range(1, _RESEARCH_DAYS + 1):
        research[:, :-lag] |= g.buy[:, lag:]
    g.research = research
    # Rise of intent over the last four days: rising intent shows in intent-term searches before the
    # sessions and carts catch up.
    lagged = g.x[:, np.maximum(np.arange(days) - 4, 0)]
    g.rise = np.clip(g.x - lagged, 0.0, None)
    log_rate = pop.activity[:, None] + _SESSION_INTENT * g.x + _SESSION_RESEARCH * research
    rate = life * _SESSION_RATE[persona] * np.exp(log_rate)
    sessions = rng.poisson(rate)
    sessions = np.maximum(sessions, g.buy.astype(sessions.dtype))  # a purchase needs a session
    signup_day = is_new & (day == signup)
    sessions = np.where(signup_day, np.maximum(sessions, 1), sessions)  # registration visit
    g.sessions = sessions.astype(np.int32)
    return g


# --------------------------------------------------------------------------------------------------
# Sessions and events of people
# --------------------------------------------------------------------------------------------------
def _sessions(rng: np.random.Generator, pop: _Population, g: _Grid, items: _Items, midnights: np.ndarray) -> dict[str, np.ndarray]:
    days = g.x.shape[1]
    cells = np.flatnonzero(g.sessions.reshape(-1))
    counts = g.sessions.reshape(-1)[cells]
    cell = np.repeat(cells, counts)
    user = (cell // days).astype(np.int32)
    day = (cell % days).astype(np.int32)
    rank = _rank_in_groups(counts)
    s = len(cell)
    persona = pop.persona[user]
    x = g.x[user, day]
    research = g.research[user, day]
    # The first session of a purchase day ends with checkout (start times are random, so it is not
    # necessarily the day's first session in time).
    purchase = g.buy[user, day] & (rank == 0)
    before_signup = (persona == _NEW) & (day < pop.signup_day[user])
    logged_in = purchase | ((rng.random(s) >= _ANONYMOUS_SESSION_SHARE) & ~before_signup)
    # Start: diurnal hour of the local day, scaled to the day's true length (23 or 25 h on DST days).
    frac = (_choice(rng, _HOUR_WEIGHTS, s) + rng.random(s)) / 24.0
    start = midnights[day] + (frac * (midnights[day + 1] - midnights[day])).astype(np.int64)
    platform = np.where(rng.random(s) < 0.85, pop.platform[user], _choice(rng, _PLATFORM_SHARE, s))
    channel = np.where(
        persona == _BARGAIN, _choice(rng, _BARGAIN_CHANNEL_SHARE, s), _choice(rng, _CHANNEL_SHARE, s)
    )
    focus = _pick_categories(rng, pop, items, user, explore=0.15)
    n_inter = 1 + rng.poisson(_VIEWS_PER_SESSION[persona] * np.exp(0.1 * x)) + purchase
    p_search = _sigmoid(-0.7 + 0.3 * x + _SEARCH_RESEARCH * research + 0.6 * (persona == _BARGAIN))
    n_search = (rng.random(s) < p_search) * (1 + rng.poisson(0.4 + 0.6 * research))
    return {
        "user": user, "day": day, "purchase": purchase, "logged_in": logged_in, "start": start,
        "platform": platform.astype(np.int8), "channel": channel.astype(np.int8), "focus": focus,
        "n_inter": n_inter.astype(np.int64), "n_search": n_search.astype(np.int64),
    }


def _pick_categories(rng: np.random.Generator, pop: _Population, items: _Items, user: np.ndarray, explore: float) -> np.ndarray:
    """A favourite category of each user (by weight), or a popular one with probability ``explore``."""
    u = rng.random(len(user))
    slot = (u[:, None] > pop.fav_cdf[user]).sum(axis=1).clip(0, 2)
    fav = pop.fav_cats[user, slot]
    other = _choice(rng, items.cat_weight, len(user))
    return np.where(rng.random(len(user)) < explore, other, fav).astype(np.int32)


_SEARCH, _VIEW, _FAV, _CART, _REMOVE, _BUY = 0, 1, 2, 3, 4, 5
_STAGE_TYPE = {_SEARCH: "search", _VIEW: "view", _FAV: "fav", _CART: "cart", _REMOVE: "remove_cart", _BUY: "buy"}


def _human_events(rng: np.random.Generator, pop: _Population, g: _Grid, s: dict[str, np.ndarray], items: _Items) -> dict[str, np.ndarray]:
    n_sess = len(s["user"])
    # Interactions: a view of an item, maybe followed by favourite, add-to-cart, later removal, checkout.
    i_sess = np.repeat(np.arange(n_sess), s["n_inter"])
    i_pos = _rank_in_groups(s["n_inter"])
    i_user = s["user"][i_sess]
    persona = pop.persona[i_user]
    x = g.x[i_user, s["day"][i_sess]]
    research = g.research[i_user, s["day"][i_sess]]
    n_i = len(i_sess)
    on_focus = rng.random(n_i) < 0.8  # sessions stay mostly within one category
    cats = np.where(on_focus, s["focus"][i_sess], _pick_categories(rng, pop, items, i_user, explore=0.3))
    # Deal seeking: users about to buy (and bargain hunters anyway) look at promotion items.
    p_promo = _sigmoid(-2.6 + 1.2 * (persona == _BARGAIN) + _PROMO_RESEARCH * research)
    item = items.sample(rng, cats, rng.random(n_i) < p_promo)
    purchase = s["purchase"][i_sess]
    fav = rng.random(n_i) < _sigmoid(_FAV_BASE[persona] + _FAV_INTENT * x)
    cart_logit = _CART_BASE[persona] + _CART_INTENT * x + _CART_RESEARCH * research + _CART_CHECKOUT * purchase
    cart = rng.random(n_i) < _sigmoid(cart_logit)
    last = i_pos == s["n_inter"][i_sess] - 1
    remove = cart & (rng.random(n_i) < np.where(persona == _BARGAIN, 0.3, 0.15)) & ~(purchase & last)
    cart |= purchase & last  # a checkout session buys at least its last carted item
    bought = purchase & cart & ~remove & ((rng.random(n_i) < 0.3) | last)
    # Removal happens at a later point of the same session.
    remaining = s["n_inter"][i_sess] - i_pos
    remove_pos = i_pos + (rng.random(n_i) * remaining).astype(np.int64)
    checkout_pos = s["n_inter"][i_sess]

    # Searches: the first opens the session, later ones come before some later view.
    q_sess = np.repeat(np.arange(n_sess), s["n_search"])
    q_rank = _rank_in_groups(s["n_search"])
    q_pos = np.where(q_rank == 0, 0, (rng.random(len(q_sess)) * s["n_inter"][q_sess]).astype(np.int64))

    parts = [
        (q_sess, q_pos, _SEARCH, np.full(len(q_sess), -1, np.int32), q_rank),
        (i_sess, i_pos, _VIEW, item, i_pos),
        (i_sess[fav], i_pos[fav], _FAV, item[fav], i_pos[fav]),
        (i_sess[cart], i_pos[cart], _CART, item[cart], i_pos[cart]),
        (i_sess[remove], remove_pos[remove], _REMOVE, item[remove], i_pos[remove]),
        (i_sess[bought], checkout_pos[bought], _BUY, item[bought], i_pos[bought]),
    ]
    sess = np.concatenate([p[0] for p in parts])
    pos = np.concatenate([p[1] for p in parts])
    etype = np.concatenate([np.full(len(p[0]), p[2], np.int8) for p in parts])
    ev_item = np.concatenate([p[3] for p in parts]).astype(np.int32)
    tie = np.concatenate([p[4] for p in parts])
    order = np.lexsort((tie, etype, pos, sess))
    sess, etype, ev_item = sess[order], etype[order], ev_item[order]

    # Time: session start plus cumulative gaps of seconds to minutes; all lines of a checkout share
    # the checkout instant.  Carts and favourites follow their view quickly, browsing takes longer.
    n_ev = len(sess)
    log_gap = np.select(
        [etype == _VIEW, etype == _SEARCH, (etype == _FAV) | (etype == _CART), etype == _REMOVE],
        [3.4, 2.8, 2.2, 3.6],
        default=4.0,
    ) + rng.normal(0.0, 0.8, n_ev)
    gap = (np.clip(np.exp(log_gap), 1.0, 900.0) * _US_PER_SECOND).astype(np.int64)
    first = np.ones(n_ev, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    after_buy = np.zeros(n_ev, dtype=bool)
    after_buy[1:] = etype[:-1] == _BUY
    gap[first | ((etype == _BUY) & after_buy)] = 0
    csum = np.cumsum(gap)
    start_of_session = np.maximum.accumulate(np.where(first, np.arange(n_ev), 0))
    offset = csum - csum[start_of_session]
    time = s["start"][sess] + offset
    return {
        "user": s["user"][sess].astype(np.int32),
        "logged_in": s["logged_in"][sess],
        "session": sess.astype(np.int64),
        "time": time.astype(np.int64),
        "etype": etype,
        "item": ev_item,
        "seq": np.arange(n_ev, dtype=np.int64),
        "platform": s["platform"][sess],
        "channel": s["channel"][sess],
        "category": np.where(etype == _SEARCH, s["focus"][sess], -1).astype(np.int32),
        "day": s["day"][sess].astype(np.int32),
    }


def _bot_events(rng: np.random.Generator, pop: _Population, days: int, items: _Items, midnights: np.ndarray) -> dict[str, np.ndarray]:
    """Crawlers: a daily logged-in session at a fixed hour, views at a fixed period in id order."""
    bots = np.flatnonzero(pop.persona == _BOT).astype(np.int32)
    n_bots = len(bots)
    start_sec = rng.integers(3600, 4 * 3600, n_bots)  # each bot runs at its own time, 01:00-04:00
    period_sec = rng.integers(8, 31, n_bots)  # and its own exact period
    cursor0 = rng.integers(0, items.n, n_bots)
    bot = np.repeat(np.arange(n_bots), days)
    day = np.tile(np.arange(days), n_bots)
    views = rng.integers(100, 301, len(bot))
    # The crawl continues each day where it stopped the day before.
    per_day = views.reshape(n_bots, days)
    cursor = (cursor0[:, None] + np.cumsum(per_day, axis=1) - per_day).reshape(-1)
    ev_sess = np.repeat(np.arange(len(bot)), views)
    k = _rank_in_groups(views)
    time = midnights[day][ev_sess] + (start_sec[bot][ev_sess] + k * period_sec[bot][ev_sess]) * _US_PER_SECOND
    item = items.by_number[(cursor[ev_sess] + k) % items.n]
    n_ev = len(ev_sess)
    return {
        "user": bots[bot][ev_sess],
        "logged_in": np.ones(n_ev, dtype=bool),
        "session": -1 - ev_sess.astype(np.int64),  # negative: distinct from human session numbers
        "time": time.astype(np.int64),
        "etype": np.full(n_ev, _VIEW, np.int8),
        "item": item.astype(np.int32),
        "seq": k.astype(np.int64),
        "platform": np.full(n_ev, _PLATFORMS.index("web"), np.int8),
        "channel": np.full(n_ev, _CHANNELS.index("direct"), np.int8),
        "category": np.full(n_ev, -1, np.int32),
        "day": day[ev_sess].astype(np.int32),
    }


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def _search_queries(rng: np.random.Generator, cat: _Catalogue, pop: _Population, g: _Grid, ev: dict[str, np.ndarray]) -> pa.Array:
    """Query text for the search events: category terms, or intent terms when intent runs high."""
    is_q = ev["etype"] == _SEARCH
    user, day, category = ev["user"][is_q], ev["day"][is_q], ev["category"][is_q]
    n = len(user)
    persona = pop.persona[user]
    p_intent = _sigmoid(
        _INTENT_QUERY_BASE[persona]
        + _INTENT_QUERY_RISE * g.rise[user, day]
        + _INTENT_QUERY_RESEARCH * g.research[user, day]
    )
    intent = rng.random(n) < p_intent
    zh = np.where(rng.random(n) < 0.9, pop.zh[user], ~pop.zh[user])
    group = cat.cat_group[category]
    desc = group * cat.desc_per_group + rng.integers(0, cat.desc_per_group, n)
    brand = group * cat.brands_per_group + rng.integers(0, cat.brands_per_group, n)
    term = rng.integers(0, len(_INTENT_TERMS_ZH), n)
    form = rng.integers(0, 3, n)
    a_zh = pa.array(zh)
    noun = pc.if_else(a_zh, cat.noun_zh.take(pa.array(category)), cat.noun_en.take(pa.array(category)))
    dword = pc.if_else(a_zh, cat.desc_zh.take(pa.array(desc)), cat.desc_en.take(pa.array(desc)))
    bword = cat.brands.take(pa.array(brand))
    iword = pc.if_else(a_zh, cat.intent_zh.take(pa.array(term)), cat.intent_en.take(pa.array(term)))
    empty = pa.scalar("", pa.string())
    # Plain: "noun", "noun descriptor" (zh) / "descriptor noun" (en), "brand noun".
    plain_left = pc.if_else(pa.array(form == 2), bword, pc.if_else(pa.array((form == 1) & ~zh), dword, empty))
    plain_right = pc.if_else(pa.array((form == 1) & zh), dword, empty)
    plain = _join_words(plain_left, noun, plain_right)
    # Intent: "noun term", "term noun", or the bare term.
    intent_text = pc.if_else(
        pa.array(form == 0), _join_words(noun, iword), pc.if_else(pa.array(form == 1), _join_words(iword, noun), iword)
    )
    return pc.if_else(pa.array(intent), intent_text, plain)


def _clickstream_table(
    rng: np.random.Generator, cat: _Catalogue, items: _Items, pop: _Population, g: _Grid,
    ev: dict[str, np.ndarray], ev_dt: np.ndarray, salt: int,
) -> pa.Table:
    n = len(ev["user"])
    is_q = ev["etype"] == _SEARCH
    has_item = ~is_q
    queries = _search_queries(rng, cat, pop, g, ev)
    q_index = np.cumsum(is_q) - 1
    item = np.where(has_item, ev["item"], 0)
    # Session ids: a hash of (session number); bot sessions have negative numbers, hashed the same way.
    session_ids = _hex_ids(_mix64(ev["session"].view(np.uint64), salt ^ 0x5E55), "")
    event_types = pa.array([_STAGE_TYPE[k] for k in range(6)])
    return _make_table(
        schemas.CLICKSTREAM,
        {
            "event_id": _hex_ids(_mix64(np.arange(n, dtype=np.uint64), salt ^ 0xE7), ""),
            "user_id": _take(pop.ids, ev["user"], ev["logged_in"]),
            "anonymous_id": pop.device.take(pa.array(ev["user"])),
            "session_id": session_ids,
            "event_time": pa.array(ev["time"], type=pa.timestamp("us", tz="UTC")),
            "event_type": event_types.take(pa.array(ev["etype"])),
            "item_id": _take(items.ids, item, has_item),
            "category_id": _take(cat.cat_ids, items.category[item], has_item),
            "brand": _take(cat.brands, items.brand[item], has_item),
            "price": pa.array(items.price[item], mask=~has_item),
            "search_query": _take(_as_array(queries), q_index, is_q),
            "channel": pa.array(_CHANNELS).take(pa.array(ev["channel"])),
            "platform": pa.array(_PLATFORMS).take(pa.array(ev["platform"])),
            "dt": pa.array(ev_dt, type=pa.int32()).view(pa.date32()),
        },
    )


def _orders_table(
    rng: np.random.Generator, cat: _Catalogue, items: _Items, pop: _Population,
    ev: dict[str, np.ndarray], ev_dt: np.ndarray, salt: int,
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One order per checkout session, one line per buy event (already sorted by time, session)."""
    buy = np.flatnonzero(ev["etype"] == _BUY)
    sess = ev["session"][buy]
    new_order = np.r_[True, sess[1:] != sess[:-1]] if len(buy) else np.zeros(0, dtype=bool)
    order_no = np.cumsum(new_order) - 1
    n_orders = int(new_order.sum())
    line = _rank_in_groups(np.bincount(order_no, minlength=n_orders)) + 1
    user = ev["user"][buy]
    item = ev["item"][buy]
    persona = pop.persona[user]
    statuses = np.array(list(_ORDER_STATUS_SHARE))
    status = _choice(rng, np.array(list(_ORDER_STATUS_SHARE.values())), n_orders)[order_no]
    quantity = 1 + _choice(rng, np.array([0.78, 0.16, 0.06]), len(buy))
    unit_price = items.price[item]
    discounted = rng.random(len(buy)) < _DISCOUNT_SHARE[persona]
    discount = np.where(discounted, np.round(quantity * unit_price * rng.uniform(0.05, 0.25, len(buy)), 2), 0.0)
    order_ids = _hex_ids(_mix64(sess.view(np.uint64), salt ^ 0x0D), "o")
    table = _make_table(
        schemas.ORDERS,
        {
            "order_id": order_ids,
            "line_number": pa.array(line, type=pa.int32()),
            "user_id": pop.ids.take(pa.array(user)),
            "order_time": pa.array(ev["time"][buy], type=pa.timestamp("us", tz="UTC")),
            "status": pa.array(statuses[status]),
            "item_id": items.ids.take(pa.array(item)),
            "category_id": cat.cat_ids.take(pa.array(items.category[item])),
            "quantity": pa.array(quantity, type=pa.int32()),
            "unit_price": pa.array(unit_price),
            "discount": pa.array(discount),
            "dt": pa.array(ev_dt[buy], type=pa.int32()).view(pa.date32()),
        },
    )
    paid = statuses[status] == "paid"
    paid_lines = {"user": user[paid], "item": item[paid], "time": ev["time"][buy][paid], "number": buy[paid]}
    return table, paid_lines


def _reviews_table(
    rng: np.random.Generator, pop: _Population, items: _Items, lines: dict[str, np.ndarray],
    last_dt: int, time_zone: str, salt: int,
) -> pa.Table:
    """Some paid lines get a review 1-10 days later; kept only if written within the window."""
    persona = pop.persona[lines["user"]]
    n = len(persona)
    reviewed = rng.random(n) < _REVIEW_SHARE[persona]
    delay_days = 1.0 + rng.gamma(2.0, 1.5, n)
    time = lines["time"] + (delay_days * _US_PER_DAY).astype(np.int64)
    review_dt = _local_dates(time, time_zone)
    keep = reviewed & (review_dt <= last_dt)
    user, item, time, review_dt, number = (
        lines["user"][keep], lines["item"][keep], time[keep], review_dt[keep], lines["number"][keep]
    )
    persona = persona[keep]
    n = len(user)
    # Loyal customers are happier; the rest have a longer negative tail.
    rating = np.where(
        persona == _LOYAL,
        1 + _choice(rng, np.array([0.02, 0.03, 0.08, 0.32, 0.55]), n),
        1 + _choice(rng, np.array([0.07, 0.07, 0.14, 0.32, 0.40]), n),
    )
    zh = np.where(rng.random(n) < 0.9, pop.zh[user], ~pop.zh[user])
    mood = np.where(rating >= 4, "pos", np.where(rating == 3, "mid", "neg"))
    text = pa.nulls(n, pa.string())  # every row is overwritten by exactly one (language, tone) below
    for lang, sep in (("zh", "，"), ("en", ", ")):
        for tone in ("pos", "mid", "neg"):
            words = pa.array(_REVIEW_PHRASES[(lang, tone)])
            m = len(words)
            first = rng.integers(0, m, n)
            second = (first + 1 + rng.integers(0, m - 1, n)) % m  # a different second phrase
            one = words.take(pa.array(first))
            two = pc.binary_join_element_wise(one, words.take(pa.array(second)), sep)
            candidate = pc.if_else(pa.array(rng.random(n) < 0.4), one, two)
            text = pc.if_else(pa.array((zh == (lang == "zh")) & (mood == tone)), candidate, text)
    order = np.lexsort((number, time))
    table = _make_table(
        schemas.REVIEWS,
        {
            "review_id": _hex_ids(_mix64(number.astype(np.uint64), salt ^ 0x4E), "r"),
            "user_id": pop.ids.take(pa.array(user)),
            "item_id": items.ids.take(pa.array(item)),
            "review_time": pa.array(time, type=pa.timestamp("us", tz="UTC")),
            "rating": pa.array(rating, type=pa.int32()),
            "review_text": text,
            "dt": pa.array(review_dt, type=pa.int32()).view(pa.date32()),
        },
    )
    return table.take(pa.array(order))


def _users_table(rng: np.random.Generator, pop: _Population, first_dt: int) -> pa.Table:
    n = len(pop.persona)
    gender = _choice(rng, np.array([0.52, 0.40, 0.08]), n)  # f, m, undeclared
    age = _choice(rng, np.array([0.16, 0.34, 0.26, 0.14, 0.10]), n)
    # Loyal high spenders live in bigger cities more often.
    tier = np.where(
        pop.persona == _LOYAL,
        _choice(rng, np.array([0.35, 0.30, 0.18, 0.10, 0.07]), n),
        _choice(rng, np.array([0.18, 0.24, 0.24, 0.18, 0.16]), n),
    )
    return _make_table(
        schemas.USERS,
        {
            "user_id": pop.ids,
            "signup_date": pa.array((first_dt + pop.signup_day).astype(np.int32), type=pa.int32()).view(pa.date32()),
            "gender": _take(pa.array(["f", "m", "f"]), gender, gender < 2),
            "age_band": pa.array(["18-24", "25-34", "35-44", "45-54", "55+"]).take(pa.array(age)),
            "city_tier": pa.array(["1", "2", "3", "4", "5"]).take(pa.array(tier)),
        },
    )

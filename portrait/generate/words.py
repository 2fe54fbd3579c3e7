"""Word lists of the synthetic shop: catalogue groups and leaves, model tokens, deal tags, intent
terms and review phrases.

Per group: path language, brands, descriptors (zh, en) and six leaves of (path name, Chinese noun,
English noun, median price).
"""

from __future__ import annotations

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

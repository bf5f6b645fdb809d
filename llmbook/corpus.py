"""この本の学習用コーパスと、読者自身のテキストの読み込み (A-1 §2「コーパス」で導入)。

A-1 (N グラムから RNN、Transformer へ) とそれ以降のすべての章は、ここで作る同じ
コーパスで学習・評価する。コーパスは外部の文章を一切使わず、このモジュールに
書いたテンプレートと語彙リストから、乱数の種 ``seed`` だけで決まる形で毎回生成する
(ファイルとして配布しない。来歴とライセンスは ``assets/corpus/README.md``)。

- :func:`generate_corpus` — 日常の小さな物語・日記・会話・説明文・手紙を並べた
  約 32 万字のコーパスを作る。
- :class:`Corpus` — 本文・段落 (passage)・長距離依存の記録と、全章共通の
  学習用 / 検証用の分割 (最後の 10% の passage が検証用)。
- :class:`LongRangeItem` — N-gram では当てられない「遠くの手がかり」が要る位置
  (人名の再登場と、「…」の閉じかっこ)。
- :func:`load_text` — 読者自身の UTF-8 テキスト (青空文庫形式も可) を読む。
- :class:`CharTokenizer` — 文字単位のトークナイザ。
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

__all__ = [
    "CorpusError",
    "LongRangeItem",
    "Corpus",
    "generate_corpus",
    "split_train_val",
    "load_text",
    "strip_aozora_markup",
    "CharTokenizer",
    "GIVEN_NAMES",
    "VAL_FRACTION",
    "PASSAGE_SEPARATOR",
    "DEFAULT_MIN_CHARS",
    "NAME_MIN_DISTANCE",
    "QUOTE_MIN_LEN",
    "QUOTE_MAX_LEN",
]

# ---------------------------------------------------------------------------
# 定数
# ---------------------------------------------------------------------------

#: 検証用に回す passage の割合 (最後の 10%)。全章で同じ値を使う。
VAL_FRACTION: float = 0.1
#: passage と passage のあいだに置く区切り (空行 1 つ)。passage の中には現れない。
PASSAGE_SEPARATOR: str = "\n\n"
#: 既定で生成する最小の文字数 (30 万字に少し余裕を持たせた値)。
DEFAULT_MIN_CHARS: int = 320_000
#: 人名の再登場は、紹介の位置から少なくともこの文字数だけ後ろに置く。
NAME_MIN_DISTANCE: int = 40
#: 人名の再登場までの目標距離の上限 (実際の距離は最後の 1 文の分だけ超えうる)。
NAME_TARGET_MAX_DISTANCE: int = 320
#: 「…」の中身の長さの範囲 (かっこを除く文字数)。
QUOTE_MIN_LEN: int = 10
QUOTE_MAX_LEN: int = 60


class CorpusError(ValueError):
    """コーパスやテキストの読み込みで起きた誤り (A-1 §2「コーパス」で導入)。

    メッセージは日本語で、どのファイルの何が問題か・どう直せばよいかを書く。
    """


# ---------------------------------------------------------------------------
# データ構造
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LongRangeItem:
    """長距離の手がかりが要る予測位置 1 つ (A-1 §2「コーパス」で導入)。

    - ``kind``: ``"name"`` (人名の再登場) か ``"quote_close"`` (「…」を閉じる 」)。
    - ``position``: 当てるべき文字列 ``target`` が始まる、本文中の文字位置。
    - ``target``: 当てるべき文字列 (人名なら下の名前、閉じかっこなら ``"」"``)。
    - ``distance``: 手がかりまでの距離 (文字数)。人名なら passage 冒頭で紹介された
      同じ名前の位置まで、閉じかっこなら対応する 「 の位置まで。
    """

    kind: str
    position: int
    target: str
    distance: int

    def shifted(self, offset: int) -> "LongRangeItem":
        """``position`` を ``offset`` だけずらした複製を返す。"""
        return LongRangeItem(self.kind, self.position + offset, self.target, self.distance)


@dataclass
class Corpus:
    """生成したコーパス一式と、全章共通の学習用 / 検証用分割 (A-1 §2「コーパス」で導入)。

    ``text`` は ``passages`` を :data:`PASSAGE_SEPARATOR` (空行) でつないだもの。
    分割は passage 単位で、**最後の 10% (少なくとも 1 つ) の passage が検証用**、
    残りが学習用。1 つの passage が両側にまたがることはない。
    ``train_text == text[:len(train_text)]``、``val_text == text[val_offset:]`` が成り立つ。
    """

    text: str
    passages: list[str]
    items: list[LongRangeItem]
    seed: int = 0
    val_fraction: float = VAL_FRACTION
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self._starts:
            starts, pos = [], 0
            for p in self.passages:
                starts.append(pos)
                pos += len(p) + len(PASSAGE_SEPARATOR)
            self._starts = starts

    # --- 分割 -------------------------------------------------------------
    @property
    def n_val_passages(self) -> int:
        """検証用の passage の数 (``round(全体 × val_fraction)``、少なくとも 1)。"""
        return max(1, round(len(self.passages) * self.val_fraction))

    @property
    def n_train_passages(self) -> int:
        """学習用の passage の数。"""
        return len(self.passages) - self.n_val_passages

    @property
    def passage_starts(self) -> list[int]:
        """各 passage が ``text`` の中で始まる文字位置。"""
        return list(self._starts)

    @property
    def val_offset(self) -> int:
        """検証用テキストが ``text`` の中で始まる文字位置。"""
        return self._starts[self.n_train_passages]

    @property
    def train_text(self) -> str:
        """学習用テキスト (最初の 90% の passage を空行でつないだもの)。"""
        return PASSAGE_SEPARATOR.join(self.passages[: self.n_train_passages])

    @property
    def val_text(self) -> str:
        """検証用テキスト (最後の 10% の passage を空行でつないだもの)。"""
        return PASSAGE_SEPARATOR.join(self.passages[self.n_train_passages :])

    @property
    def train_items(self) -> list[LongRangeItem]:
        """学習用テキストの中の長距離項目 (位置は ``train_text`` の中の位置)。"""
        end = self.val_offset
        return [it for it in self.items if it.position < end]

    @property
    def val_items(self) -> list[LongRangeItem]:
        """検証用テキストの中の長距離項目 (位置は ``val_text`` の中の位置に付け直す)。"""
        off = self.val_offset
        return [it.shifted(-off) for it in self.items if it.position >= off]

    # --- 要約 -------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        """文字数・passage 数・長距離項目の数と距離の範囲をまとめた辞書を返す。

        ``sha256`` は本文の指紋。``assets/corpus/stats.json`` と比べれば、手元で生成した
        コーパスがこの本のものと同じかどうかを確かめられる。
        """
        out: dict[str, object] = {
            "seed": self.seed,
            "sha256": hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
            "chars": len(self.text),
            "unique_chars": len(set(self.text)),
            "passages": len(self.passages),
            "train_passages": self.n_train_passages,
            "val_passages": self.n_val_passages,
            "train_chars": self.val_offset - len(PASSAGE_SEPARATOR),
            "val_chars": len(self.text) - self.val_offset,
        }
        for kind in ("name", "quote_close"):
            ds = [it.distance for it in self.items if it.kind == kind]
            out[f"{kind}_items"] = len(ds)
            out[f"{kind}_val_items"] = sum(
                1 for it in self.items if it.kind == kind and it.position >= self.val_offset
            )
            out[f"{kind}_distance_min"] = min(ds) if ds else None
            out[f"{kind}_distance_max"] = max(ds) if ds else None
            out[f"{kind}_distance_mean"] = round(sum(ds) / len(ds), 1) if ds else None
        return out


def split_train_val(corpus: Corpus) -> tuple[str, str]:
    """全章共通の分割 ``(train_text, val_text)`` を返す (A-1 §2「コーパス」で導入)。

    passage 単位で、最後の 10% が検証用 (``corpus.train_text`` / ``corpus.val_text`` と同じ)。
    """
    return corpus.train_text, corpus.val_text


# ---------------------------------------------------------------------------
# 語彙リストとテンプレート (すべてこの本のために書いたもの)
# ---------------------------------------------------------------------------

_FAMILY_NAMES: tuple[str, ...] = (
    "佐倉", "高木", "森川", "青山", "藤井", "小野寺", "石田", "中村", "宮本", "川口",
    "松下", "岡田", "吉村", "西野", "坂本", "長谷川", "村上", "杉山", "千葉", "今井",
    "大塚", "原田", "水野", "北川", "野口", "桜井", "内田", "菅原", "上野", "秋山",
    "平野", "横山", "河合", "早川", "三浦", "白石", "浅野", "田辺", "望月", "市川",
    "安藤", "久保", "小松", "星野", "柴田", "香川", "堀内", "福田",
)

#: 下の名前 (2〜4 文字、漢字またはかな)。人名の長距離項目の ``target`` になる。
GIVEN_NAMES: tuple[str, ...] = (
    "みのり", "はると", "さくら", "陽菜", "悠真", "ひかり", "結衣", "颯太", "あおい", "蒼空",
    "美咲", "こうた", "千夏", "健一", "なつみ", "大和", "真央", "しおり", "拓海", "ゆうき",
    "春香", "航平", "つばさ", "彩花", "隆之介", "えみ", "和也", "のぞみ", "智恵子", "りょう",
    "菜々子", "誠司", "かえで", "光太郎", "まどか", "慎吾", "ちひろ", "亜希", "正樹", "すみれ",
    "康平", "ももこ", "理沙", "直人", "あかね", "修平", "ことね", "秀明", "みちひこ", "ゆきひろ",
)

_BANK: dict[str, tuple[str, ...]] = {
    "town": (
        "海の見える町", "坂の多い町", "山あいの小さな村", "川沿いの町", "駅から少し離れた住宅街",
        "古い商店街のある町", "港町", "田んぼに囲まれた村", "城跡のある町", "湖のほとりの町",
        "島の小さな集落", "新しい団地", "温泉の湧く町", "桜並木のある町", "雪の多い町",
    ),
    "role": (
        "小学五年生", "中学二年生", "高校一年生", "大学生", "会社員", "看護師", "図書館の司書",
        "パン屋の店員", "郵便配達員", "小学校の先生", "漁師", "花屋の店主", "大工", "美容師",
        "駅員", "新聞記者", "バスの運転手", "料理人", "元教師", "農家の人", "絵かき", "獣医",
    ),
    "house": (
        "古い一軒家", "小さなアパート", "二階建ての家", "坂の上の家", "商店街の裏の家",
        "川のそばの家", "庭の広い家", "駅前のマンション",
    ),
    "living": (
        "家族と暮らしている", "ひとりで暮らしている", "祖母と二人で暮らしている",
        "猫と一緒に暮らしている", "両親と弟と暮らしている",
    ),
    "place": (
        "駅前の本屋", "川沿いの公園", "市立図書館", "商店街の八百屋", "近くのスーパー",
        "神社の境内", "港の市場", "角の喫茶店", "坂の下のパン屋", "市民プール", "郵便局",
        "小さな花屋", "古本屋", "学校の体育館", "駄菓子屋", "バス停", "海辺の遊歩道",
        "川原のグラウンド", "駅の改札", "公民館", "植物園", "美術館", "動物園",
        "ホームセンター", "町の銭湯", "ラーメン屋", "果物屋", "文房具屋", "自転車屋", "病院の待合室",
    ),
    "who": (
        "母", "父", "祖母", "祖父", "姉", "兄", "弟", "妹", "近所のおばあさん", "となりのおじさん",
        "友だち", "同級生", "担任の先生", "店の主人", "駅員さん", "常連のお客さん", "幼なじみ",
        "部活の先輩", "職場の後輩", "いとこ", "郵便屋さん", "管理人さん",
    ),
    "item": (
        "傘", "古い地図", "手紙", "麦わら帽子", "赤いリボン", "文庫本", "水筒", "弁当箱", "家の鍵",
        "古い写真", "小さな鈴", "毛糸の手袋", "ノート", "カメラ", "貝がら", "切符", "腕時計",
        "スケッチブック", "虫かご", "ハーモニカ", "紙ぶくろ", "はがき", "万年筆", "折りたたみ傘",
    ),
    "wear": (
        "帽子", "セーター", "マフラー", "新しい靴", "眼鏡", "ワンピース", "上着", "髪かざり",
    ),
    "shop": (
        "駅前のパン屋", "商店街の和菓子屋", "コンビニ", "角の果物屋", "駄菓子屋", "近くのスーパー",
        "駅の売店", "坂の下のケーキ屋",
    ),
    "errand": ("買い物", "届け物", "用事", "お使い"),
    "food": (
        "カレーライス", "焼き魚", "おにぎり", "肉じゃが", "ハンバーグ", "きつねうどん", "親子丼",
        "焼きそば", "卵焼き", "コロッケ", "冷やし中華", "鍋焼きうどん", "ぎょうざ", "サンドイッチ",
        "オムライス", "天ぷらそば", "豚汁", "ちらし寿司", "グラタン", "さばのみそ煮",
    ),
    "breakfast": (
        "トーストと目玉焼き", "ごはんとみそ汁", "納豆ごはん", "おにぎりふたつ", "ホットケーキ",
        "昨日の残りのカレー", "バナナとヨーグルト", "焼き鮭と卵焼き",
    ),
    "snack": (
        "たい焼き", "みかん", "せんべい", "どら焼き", "アイスクリーム", "みたらし団子", "ぶどう",
        "ショートケーキ", "大福", "プリン", "焼きいも", "かき氷", "メロンパン", "ドーナツ",
        "りんご", "くず餅",
    ),
    "activity": (
        "宿題", "部屋の掃除", "洗濯", "庭の草むしり", "読書", "ピアノの練習", "料理",
        "サッカーの練習", "自由研究", "編み物", "家計簿の整理", "写真の整理", "年賀状の準備",
        "散歩", "買い物", "窓ふき", "絵の練習", "ジョギング",
    ),
    "hobby": (
        "ラジオ体操", "俳句", "切り絵", "ジグソーパズル", "星座の観察", "お菓子作り", "社交ダンス",
        "鉄道写真", "家庭菜園", "書道", "ウクレレ",
    ),
    "topic": (
        "昔の学校", "来週の祭り", "新しくできた店", "好きな本", "飼っている猫", "夏休みの計画",
        "子どものころの遊び", "最近見た映画", "町のうわさ", "明日の天気", "おいしいパン屋",
        "遠くに住む親せき", "今年の運動会",
    ),
    "season": (
        "春", "初夏", "梅雨", "夏", "夏の終わり", "秋", "晩秋", "冬", "年の暮れ", "春休み",
    ),
    "day_part": (
        "ある朝", "日曜日の昼下がり", "放課後", "仕事帰りの夕方", "休みの日の午後", "朝早く",
        "ある土曜日の午前",
    ),
    "weather_sentence": (
        "その日は朝からよく晴れていた。", "空には灰色の雲が低くたれこめていた。",
        "朝から細かい雨が降りつづいていた。", "うすい雲のむこうに、白い太陽が見えていた。",
        "空はどこまでも青く、風も気持ちよかった。", "北風が強く、頬が痛いほど冷たかった。",
        "ときどき雪がちらつく、寒い日だった。", "風のない、むし暑い日だった。",
    ),
    "weather_short": (
        "晴れ", "くもり", "雨", "晴れのちくもり", "くもりのち雨", "雪", "小雨", "快晴", "強風",
    ),
    "manner": (
        "笑いながら", "小さな声で", "首をかしげて", "うれしそうに", "心配そうに", "急に真顔になって",
        "少し照れくさそうに", "目を細めて", "ため息まじりに", "元気よく",
    ),
    "reaction": (
        "声を出して笑った", "目を丸くした", "ゆっくりうなずいた", "肩をすくめた", "少し考えこんだ",
        "照れたように頭をかいた", "ほっとした顔をした",
    ),
    "feeling": (
        "胸の奥があたたかくなった", "少しだけ笑ってしまった", "なんだかほっとした",
        "すぐには返事ができなかった", "思わず顔がほころんだ", "不思議と勇気がわいてきた",
    ),
    "crowd": (
        "いつもより静かだった", "人でにぎわっていた", "子どもたちの声でいっぱいだった",
        "思ったよりすいていた", "休みの日らしく、家族連れが多かった",
    ),
    "scene": (
        "木の葉がさらさらとゆれた", "どこかで風鈴が鳴った", "洗濯物が大きくはためいた",
        "川面に小さな波が立った", "花びらがひらひらと舞った",
    ),
    "sky_view": (
        "大きな入道雲がうかんでいた", "飛行機雲が一本のびていた", "一番星が光っていた",
        "鳥の群れが南へ飛んでいった", "うっすらと虹がかかっていた",
    ),
    "sound": (
        "踏切の音", "お寺の鐘", "子どもたちの笑い声", "船の汽笛", "救急車のサイレン", "セミの声",
        "カラスの鳴き声",
    ),
    "memory": (
        "子どものころの夏休み", "引っこしてきた日のこと", "初めて一人で電車に乗った日",
        "去年の運動会", "祖父の笑顔", "小学校の卒業式",
    ),
    "taste": (
        "とてもおいしかった", "少し味がこかった", "また食べたいと思った", "思ったより量が多かった",
    ),
    "snack_state": (
        "思ったより甘かった", "あっという間になくなった", "とてもおいしかった",
        "ほっぺたが落ちそうなほどおいしかった",
    ),
    "night": (
        "本を読んでから寝た", "早めに寝ることにした", "好きな音楽を聞いた", "宿題の続きをした",
        "家族でテレビを見た",
    ),
    "happy": (
        "{who}にほめられたこと", "{snack}が半額だったこと", "なくした{item}が見つかったこと",
        "{place}の帰りに虹を見たこと",
    ),
    "bad": ("残念な", "くやしい", "つかれる", "あせる"),
    "good": (
        "全体としてはいい一日だった", "明日はなんとかなる気がする", "最後は笑って終われた",
    ),
    "tomorrow": (
        "{who}と{place}へ行く", "朝から{activity}をする", "{time}から部活がある",
    ),
    "passerby": (
        "自転車の高校生", "犬を連れた人", "配達のトラック", "ランドセルの子どもたち", "日傘の女の人",
    ),
    "letter_season": (
        "桜がちょうど見ごろです", "あじさいが色づきはじめました", "毎日セミがにぎやかです",
        "朝晩がすっかり涼しくなりました", "木々の葉が赤く色づいています", "初雪がふりました",
    ),
    "thanks": (
        "おいしいお菓子を送ってくださって", "わざわざ駅まで見送りに来てくださって",
        "引っこしを手伝ってくださって", "すてきな手紙をくださって", "お祝いの言葉をくださって",
    ),
    "weather_letter": (
        "雨がつづいています", "よいお天気がつづいています", "風の強い日が多いです",
        "寒い日がつづいています",
    ),
    "sender": (
        "いとこ", "昔の同級生", "となりの家の者", "東京の姉", "北海道の祖母", "元の職場の後輩",
        "ペンフレンド",
    ),
    "step_comment": (
        "ここまでは、思ったより簡単だった。", "ここがいちばん難しいところだそうだ。",
        "メモを取りながら、一つずつ確かめた。", "実際にやってみせてもらうと、よくわかった。",
        "{who}も横で熱心に聞いていた。", "手つきを見ているだけで、なんだか楽しくなった。",
    ),
}

#: 「…」の中身になる短い発話。いくつかつないで 10〜60 字にする。
_UTTERANCES: tuple[str, ...] = (
    "今日はいい天気だね", "{snack}、半分こしようか", "また明日、{place}で会おう",
    "{item}、どこに置いたか覚えてる？", "ちょっと手伝ってくれる？", "ありがとう、本当に助かったよ",
    "そんなに急がなくても大丈夫だよ", "{food}を作ったから、食べていってね", "気をつけて帰るんだよ",
    "この{item}、だれのだろう", "もうすぐ雨が降りそうだね", "{time}までには戻るからね",
    "今度いっしょに{place}へ行かない？", "それ、本当の話？", "ふしぎなこともあるものだね",
    "だれにでも失敗はあるよ", "よくがんばったね", "おなかがすいたなあ", "ねえ、見て！",
    "{season}になったら、また来ようね", "あと{minutes}で始まるよ", "おつりは{price}です",
    "また遊びに来てね", "宿題はもう終わったの？", "心配しなくていいよ",
    "いい{wear}だね、どこで買ったの？", "道がわからなくなっちゃった", "こっちの道のほうが近いよ",
    "気にしないで", "{place}、今日は休みみたいだよ", "{food}なら、駅の近くの店がおいしいよ",
    "昔はこのあたり、一面の田んぼだったんだ", "そろそろ帰らないと、家の人が心配するよ",
    "少し休んでいこうか", "わあ、きれい！", "この道、前にも通ったことがある気がする",
    "忘れ物はない？", "たい焼き、まだあたたかいよ", "明日は早起きしなくちゃ",
    "困ったときは、いつでも言ってね", "その{wear}、とても似合ってるよ", "うまくいくといいね",
    "ごめん、待たせちゃった？", "もう少しだけ、ここにいようよ", "そういえば、最近どうしてる？",
    "思ったより時間がかかっちゃったね", "来年もまた、いっしょに見られるといいね",
    "{topic}の話、もっと聞かせて", "何かいいことでもあったの？",
    "あの店の{snack}は、本当においしいんだ", "今日はありがとう", "またね", "うん、わかった",
    "{price}なら安いと思うよ", "{place}までは歩いて{minutes}くらいかな", "ほら、もうすぐ着くよ",
    "この前の{topic}の話、あれからずっと考えていたんだ",
    "{place}の角を曲がったところに、新しい店ができたらしいよ",
    "子どものころは、毎日のようにこの道を走って帰ったものだよ",
    "雨が降る前に、洗濯物を取りこんでおいたほうがいいと思うよ",
    "そんなに気になるなら、明日の朝いちばんに見に行ってみようか",
    "{snack}を買ってきたから、みんなで食べよう",
    "今年の{season}は、去年よりずっと過ごしやすい気がするね",
    "一人で全部やろうとしなくていいんだよ。みんなで分ければすぐ終わるから",
    "道に迷ったら、川に沿って歩けば駅に出られるからね",
    "あの{item}、ずっと探していたんだ。見つけてくれて本当にありがとう",
    "駅員さんに聞いたら、図書館なら{time}まで開いているって",
)

# --- passage の型ごとのテンプレート -------------------------------------------
# {FULL}: 人名の紹介 (姓+名)、{NAME}: 人名の再登場 (名)、{Q}: 「…」、
# 小文字の {slot}: 語彙リストからの穴埋め。{NAME} の直前 10 字以上は穴のない固定文にする
# (N-gram から見て「どの名前が来るか」が局所的な文脈では決まらないように)。

_STORY_INTRO = (
    "{FULL}は、{town}に住む{role}だ。",
    "{town}に、{FULL}という{role}がいる。",
    "{FULL}は{role}で、{town}の{house}で{living}。",
    "{season}の{day_part}、{FULL}は{place}にいた。",
    "これは、{town}に住む{role}、{FULL}の話だ。",
)
_STORY_SETTING = ("{season}の{day_part}のことだった。", "{weather_sentence}")
_STORY_OUTING = (
    "{time}ごろ、{item}を持って{spot}へ出かけた。",
    "{activity}を終えてから、{spot}へ向かった。",
    "{who}に頼まれて、{spot}まで{errand}に行った。",
    "{time}、{spot}で{who}と会う約束をしていた。",
)
_STORY_SCENE = (
    "{spot}に着くと、{who}が先に来て待っていた。",
    "{spot}の前で、{who}にばったり会った。",
    "道の途中で、{item}が落ちているのを見つけた。",
    "{who}は{item}を大事そうにかかえていた。",
    "{spot}は{crowd}。",
    "風がふいて、{scene}。",
    "空を見上げると、{sky_view}。",
    "{who}とは、もう{years}のつきあいになる。",
    "遠くで{sound}が聞こえた。",
    "{place}の前で、{who}が{item}を探していた。",
    "{item}を見ているうちに、{memory}を思い出した。",
)
_STORY_TALK = (
    "二人で{snack}を食べながら、{topic}の話をした。",
    "{who}は少し考えてから、{Q}と言った。",
    "{Q}と{who}が{manner}言った。",
    "{Q}と、思わず口に出していた。",
    "{who}の言葉に、{feeling}。",
    "\n{Q}\n",
    "{who}は{manner}、{Q}と続けた。",
)
_STORY_RETURN = (
    "帰りに{shop}に寄って、{snack}を{count}買った。",
    "{price}を払うと、店の人が{snack}をひとつおまけしてくれた。",
    "時計を見ると、もう{time}を過ぎていた。",
    "{who}は{Q}と言って、{manner}帰っていった。",
    "{snack}は{snack_state}。",
)
_STORY_REF = (
    "その夜、布団に入ってからも、{NAME}はしばらく今日のことを考えていた。",
    "次の日の朝、いちばん早く起きたのは{NAME}だった。",
    "最後まで残って片づけを手伝ったのは、{NAME}だった。",
    "家に帰ってから、窓の外をながめながら、{NAME}は小さく笑った。",
    "その日のことをいちばんよく覚えているのは、たぶん{NAME}だろう。",
    "帰り道、夕日に照らされながら、{NAME}は{who}に手をふった。",
    "あとで話を聞いて、だれよりも喜んだのは{NAME}だった。",
    "何年たっても、あの日の空を思い出すのは{NAME}のくせになった。",
)
_STORY_END = (
    "窓の外では、虫の声が聞こえていた。", "明日もきっと、いい日になるだろう。",
    "{item}は、今も大切にとってある。", "こうして、{season}の一日が終わった。",
    "遠くで{sound}が聞こえた。", "{snack}は{snack_state}。",
)

_DIARY_INTRO = (
    "{FULL}の日記　{date}　{weather_short}\n",
    "{date}　{weather_short}　{FULL}の日記\n",
    "【{FULL}の日記】{date}（{weather_short}）\n",
)
_DIARY_MORNING = (
    "今日は{wake_time}に起きた。",
    "朝ごはんは{breakfast}だった。",
    "午前中は{activity}をして過ごした。",
)
_DIARY_DAY = (
    "昼ごはんに{food}を食べた。{taste}。",
    "午後から{who}と{place}へ行った。",
    "{place}で、{who}に{Q}と言われた。",
    "{me}は{Q}と答えた。",
    "帰りに{shop}で{snack}を買った。{price}だった。",
    "{who}から{item}をもらった。大事にしようと思う。",
    "{place}の近くで見上げると、{sky_view}。",
    "最近、{me}は{hobby}にはまっている。",
    "{who}が{Q}と笑っていた。",
    "{Q}という言葉が、今日はずっと頭に残っている。",
)
_DIARY_EVENING = (
    "夜は{night}。",
    "今日いちばんうれしかったのは、{happy}。",
    "少し{bad}こともあったけれど、{good}。",
    "明日は{tomorrow}予定だ。",
    "テレビの天気予報によると、明日は{weather_short}らしい。",
)
_DIARY_REF = (
    "ノートのすみに小さく書いておく。明日もがんばれ、{NAME}。",
    "寝る前に、自分に言い聞かせた。大丈夫だよ、{NAME}。",
    "今日の最後は、いつもの言葉でしめくくる。おつかれさま、{NAME}。",
    "鏡の中の自分に向かって、こっそり言ってみた。よくやったね、{NAME}。",
    "この日記を読み返す未来の自分へ。元気にしていますか、{NAME}。",
)
_DIARY_END = ("おやすみなさい。", "明日は{weather_short}だといいな。", "")

_TALK_INTRO = (
    "{FULL}が{place}に入ると、{who}が手をふった。",
    "{FULL}は、{place}で{who}と待ち合わせをしていた。",
    "{time}、{FULL}の家に{who}がたずねてきた。",
    "{place}のベンチで、{FULL}と{who}が並んで座っていた。",
)
_TALK_MID = (
    "{Q}と{who}が言った。",
    "{Q}と返すと、{who}は{reaction}。",
    "{who}は{item}を取り出して、{Q}と言った。",
    "\n{Q}\n",
    "\n{Q}\n",
    "{Q}と聞くと、{who}は{Q}と答えた。",
    "{who}は{manner}、{Q}とつぶやいた。",
    "しばらく、二人とも黙って{snack}を食べた。",
    "{who}の話は、{topic}のことから{topic}のことへと移っていった。",
    "窓の外を{passerby}が通りすぎていった。",
)
_TALK_REF = (
    "しばらくして、先に口を開いたのは{NAME}だった。",
    "別れぎわに、いつまでも手をふっていたのは{NAME}のほうだった。",
    "帰り道、今日の会話を思い出しながら、{NAME}は空を見上げた。",
    "その話を聞いて、いちばん大きな声で笑ったのは{NAME}だった。",
    "話がひと段落したところで、お茶をいれなおしたのは{NAME}だった。",
)

_HOWTO_INTRO = (
    "{FULL}さんは{expert}だ。今日は、{title}を教えてもらった。",
    "{title}について、{expert}の{FULL}さんに話を聞いた。",
    "{expert}をしている{FULL}さんに、{title}のこつを教わった。",
)
_HOWTO_QUOTE = (
    "{Q}というのが口ぐせだそうだ。", "{Q}と、何度も念をおされた。", "{Q}とも教えてくれた。",
)
_HOWTO_REF = (
    "このこつを教えてくれたのは、もちろん{NAME}さんだ。",
    "次に会ったら、まずお礼を言おうと思う。ありがとう、{NAME}さん。",
    "上手にできたら、いちばんに見せたい相手は{NAME}さんだ。",
    "うまくいったら、報告に行くつもりだ。待っていてください、{NAME}さん。",
)
_HOWTO_END = ("さっそく今度の週末に試してみよう。", "家に帰ってから、もう一度メモを読み返した。", "")
_STEP_CONNECT = (("まず、", "はじめに、", "最初に、"), ("次に、", "それから、", "続いて、"),
                 ("次に、", "それから、", "続いて、"), ("最後に、", "仕上げに、"))

#: 説明文の話題: (題名, 教える人, 4 つの手順, 口ぐせ)。
_HOWTO_TOPICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("おいしい緑茶のいれ方", ("お茶屋の主人", "茶道の先生"),
     ("お湯をいちど沸かして、少し冷ます", "急須に茶葉を小さじ二杯入れる",
      "お湯をそそいで、一分ほど静かに待つ", "最後の一滴まで、湯のみに注ぎ切る"),
     ("熱すぎるお湯だと、苦みばかりが出てしまうよ", "最後の一滴に、いちばんおいしいところが詰まっているんだ",
      "急須はゆすらずに、じっと待つのがこつだよ")),
    ("朝顔の育て方", ("花屋の店主", "植物園の職員"),
     ("種を一晩、水につけておく", "日当たりのよい場所に、浅く種をまく",
      "土の表面がかわいたら、たっぷり水をやる", "つるがのびてきたら、支柱を立てて巻きつかせる"),
     ("水のやりすぎは、根をくさらせるもとになるよ", "朝早く見に行くと、花が開くところに会えるかもしれない",
      "花が終わったら、種をとって来年またまこう")),
    ("自転車のパンクの直し方", ("自転車屋の主人",),
     ("タイヤからチューブを引き出す", "水を張ったおけにチューブをしずめ、泡の出る場所を探す",
      "穴のまわりを紙やすりでこすり、のりをうすくぬる", "修理用のパッチをはって、しっかり押さえる"),
     ("あわてて空気を入れすぎないことが大事だよ", "穴はひとつとは限らないから、最後まで確かめてね")),
    ("おにぎりのにぎり方", ("食堂のおかみさん", "料理教室の先生"),
     ("手を水でぬらして、塩を少しつける", "ごはんを手のひらにのせ、真ん中に具を置く",
      "両手で三角を作るように、やさしく三回ほどにぎる", "のりは食べる直前に巻く"),
     ("ぎゅっとにぎりすぎると、かたくなっておいしくないよ", "ごはんは炊きたてを少し冷ましてから使うのがいいね")),
    ("部屋の片づけ方", ("片づけの相談員", "整理収納アドバイザー"),
     ("部屋にある物を、使う物と使わない物に分ける", "一年以上使っていない物は、思い切って手放す",
      "よく使う物ほど、手の届きやすい場所にしまう", "毎晩寝る前に、五分だけ物を元の場所にもどす"),
     ("一度に全部やろうとしないで、引き出しひとつから始めてごらん", "物の住所を決めてあげると、部屋は散らからないんだよ")),
    ("魚の上手な焼き方", ("魚屋の主人",),
     ("焼く三十分前に、魚にうすく塩をふる", "出てきた水分を、紙でていねいにふき取る",
      "よく熱した網に、皮の面を下にしてのせる", "何度も裏返さず、一度だけ返して焼き上げる"),
     ("さわりすぎると、身がくずれてしまうからね", "焼き色がついたら、もう少しだけがまんするんだ")),
    ("よく飛ぶ紙ひこうきの折り方", ("小学校の先生", "科学館の館長"),
     ("長方形の紙を縦半分に折って、折り目をつける", "上の角を、折り目に合わせて三角に折る",
      "もう一度、ふちを折り目に合わせて細く折る", "左右の翼が同じ形になるように整える"),
     ("まっすぐ前に、そっと押し出すように飛ばすといいよ", "翼の先を少し上に曲げると、長く飛ぶようになるんだ")),
    ("ぬか漬けの作り方", ("漬物屋のおかみさん",),
     ("ぬかに塩と水を混ぜて、ぬか床を作る", "野菜をよく洗い、表面に塩をすりこむ",
      "ぬか床に野菜をうめて、表面を平らにならす", "毎日一回、底からよくかき混ぜる"),
     ("毎日さわってあげると、ぬか床は元気になるよ", "きゅうりなら、半日ほどでちょうどよく漬かるね")),
    ("早起きのこつ", ("新聞配達員", "パン職人"),
     ("夜は決まった時間に布団に入る", "寝る前の一時間は、画面を見ないようにする",
      "目が覚めたら、すぐにカーテンを開けて光を浴びる", "朝いちばんに、コップ一杯の水を飲む"),
     ("休みの日も同じ時間に起きるのが、いちばんの近道だよ", "朝の空気は、一日のうちでいちばん気持ちがいいんだ")),
    ("写真の上手なとり方", ("写真館の主人", "新聞社のカメラマン"),
     ("光がどちらから来ているかを確かめる", "写したいものに、思い切って一歩近づく",
      "真ん中から少しずらした位置に、写したいものを置く", "息を止めて、そっとシャッターを押す"),
     ("たくさん撮って、その中から一枚を選べばいいんだよ", "夕方の光は、なんでもやさしく写してくれるね")),
    ("みそ汁の作り方", ("食堂の料理人", "料理教室の先生"),
     ("昆布とかつお節で、だしをとる", "火の通りにくい具から順に、鍋に入れる",
      "火を止めてから、みそを溶き入れる", "沸騰させないように温め直して、おわんによそう"),
     ("みそを入れたら煮立たせない、これだけは守ってね", "だしがおいしければ、みそは少なくても大丈夫だよ")),
    ("金魚の飼い方", ("金魚屋の主人",),
     ("水道の水を一日くみ置きして、塩素をぬく", "袋ごと水そうに浮かべて、水の温度を合わせる",
      "えさは二、三分で食べ切れる量だけやる", "週に一度、水の三分の一ほどを入れかえる"),
     ("えさのやりすぎは、水をにごらせるいちばんの原因だよ", "元気な金魚は、ひれをぴんと広げて泳ぐんだ")),
)

_LETTER_INTRO = ("{FULL}さんへ\n", "{FULL}さま\n", "{FULL}さん、お元気ですか。")
_LETTER_MID = (
    "先日は{thanks}、本当にありがとうございました。",
    "いただいた{snack}は、家族みんなでおいしくいただきました。",
    "最近、{me}は{hobby}を始めました。",
    "{Q}と{who}に言われて、少しうれしくなりました。",
    "{place}の近くの店に、今年も{snack}が並びはじめました。",
    "ここのところ、{weather_letter}。",
    "このあいだ、{place}で{who}に会いました。{Q}と、なつかしそうに話していました。",
    "同封した写真は、{place}で撮ったものです。",
    "{item}を見るたびに、{memory}を思い出します。",
)
_LETTER_REF = (
    "季節の変わり目ですので、どうかお体に気をつけてください、{NAME}さん。",
    "また会える日を楽しみにしています。それでは、お元気で、{NAME}さん。",
    "お返事、楽しみに待っています。いつもありがとう、{NAME}さん。",
)
_LETTER_END = ("\n{sender}より",)

# ---------------------------------------------------------------------------
# 穴埋めの仕組み
# ---------------------------------------------------------------------------

_KANJI_DIGITS = "〇一二三四五六七八九"
_WEEKDAYS = "月火水木金土日"


def _kanji_number(n: int) -> str:
    """1〜9999 の整数を漢数字にする (例: 380 → 三百八十)。"""
    out = ""
    for value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _KANJI_DIGITS[q]) + unit
    if n:
        out += _KANJI_DIGITS[n]
    return out


def _time_phrase(rng: random.Random) -> str:
    prefix, lo, hi = rng.choice(
        (("午前", 6, 11), ("午後", 1, 8), ("朝", 6, 9), ("夕方", 4, 6), ("夜", 7, 10))
    )
    hour = _kanji_number(rng.randint(lo, hi)) + "時"
    r = rng.random()
    if r < 0.4:
        return prefix + hour
    if r < 0.7:
        return prefix + hour + "半"
    return prefix + hour + _kanji_number(rng.choice((5, 10, 15, 20, 40, 45, 50, 55))) + "分"


def _date_phrase(rng: random.Random) -> str:
    day = _dt.date(2023, 1, 1) + _dt.timedelta(days=rng.randrange(365))
    return f"{day.month}月{day.day}日（{_WEEKDAYS[day.weekday()]}）"


_DYNAMIC: dict[str, Callable[[random.Random], str]] = {
    "time": _time_phrase,
    "wake_time": lambda rng: "朝" + _kanji_number(rng.randint(5, 9)) + "時" + rng.choice(("", "半", "すぎ")),
    "date": _date_phrase,
    "price": lambda rng: _kanji_number(rng.randrange(8, 200) * 10) + "円",
    "count": lambda rng: _kanji_number(rng.randint(2, 6)) + "つ",
    "minutes": lambda rng: _kanji_number(rng.choice((3, 5, 10, 15, 20, 30))) + "分",
    "years": lambda rng: _kanji_number(rng.randint(2, 30)) + "年",
}

_SLOT_RE = re.compile(r"\{([a-z_]+)\}")
_MARKER_RE = re.compile(r"\{(FULL|NAME|Q)\}")


def _fill(template: str, rng: random.Random, ctx: dict[str, str]) -> str:
    """``{slot}`` を語彙リストから選んだ語で埋める (入れ子の穴も埋める)。"""

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in ctx:
            return ctx[key]
        if key in _DYNAMIC:
            return _DYNAMIC[key](rng)
        return _fill(rng.choice(_BANK[key]), rng, ctx)

    return _SLOT_RE.sub(repl, template)


def _join_utterances(parts: Sequence[str]) -> str:
    out = ""
    for i, u in enumerate(parts):
        out += u
        if i < len(parts) - 1:
            out += "　" if u.endswith(("！", "？")) else "。"
    return out


class _PassageBuilder:
    """1 つの passage を組み立て、長距離項目の位置を記録する。"""

    def __init__(self, rng: random.Random, family: str, given: str, ctx: dict[str, str]) -> None:
        self.rng = rng
        self.family = family
        self.given = given
        self.ctx = ctx
        self.parts: list[str] = []
        self.length = 0
        self.last = ""
        self.intro_pos: int | None = None
        self.items: list[LongRangeItem] = []

    def _add(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.length += len(s)
            self.last = s[-1]

    def _quote(self, pool: Sequence[str]) -> str:
        # 発話を 1〜3 個つなぐ (1 個が多め)。10 字に届かなければ足し、60 字を超えたら選び直す。
        rng = self.rng
        n_goal = rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0]
        parts: list[str] = []
        used: set[str] = set()
        for _ in range(50):
            tpl = rng.choice(pool)
            if tpl in used and len(used) < len(pool):
                continue
            u = _fill(tpl, rng, self.ctx)
            if len(_join_utterances(parts + [u])) > QUOTE_MAX_LEN:
                continue
            used.add(tpl)
            parts.append(u)
            if len(parts) >= n_goal and len(_join_utterances(parts)) >= QUOTE_MIN_LEN:
                break
        content = _join_utterances(parts)
        if not QUOTE_MIN_LEN <= len(content) <= QUOTE_MAX_LEN:  # pragma: no cover - 語彙の誤り
            raise RuntimeError(f"引用の長さが範囲外です: {content!r}")
        return content

    def emit(self, template: str, quote_pool: Sequence[str] = _UTTERANCES) -> None:
        if template.startswith("\n") and (self.length == 0 or self.last == "\n"):
            template = template[1:]
        pieces = _MARKER_RE.split(template)
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                self._add(_fill(piece, self.rng, self.ctx))
            elif piece == "FULL":
                self.intro_pos = self.length + len(self.family)
                self._add(self.family + self.given)
            elif piece == "NAME":
                assert self.intro_pos is not None
                self.items.append(
                    LongRangeItem("name", self.length, self.given, self.length - self.intro_pos)
                )
                self._add(self.given)
            else:  # Q
                content = self._quote(quote_pool)
                close = self.length + 1 + len(content)
                self.items.append(LongRangeItem("quote_close", close, "」", len(content) + 1))
                self._add("「" + content + "」")

    def gap(self) -> int:
        """紹介の位置から現在位置までの文字数。"""
        assert self.intro_pos is not None
        return self.length - self.intro_pos

    def text(self) -> str:
        return "".join(self.parts).rstrip("\n")


def _fill_until(b: _PassageBuilder, pool: Sequence[str], target_gap: int, max_sentences: int = 12) -> None:
    """紹介からの距離が ``target_gap`` 以上になるまで、``pool`` の文を重ならないように足す。"""
    rng = b.rng
    order = list(range(len(pool)))
    rng.shuffle(order)
    k = 0
    while (b.gap() < target_gap and k < max_sentences) or b.gap() < NAME_MIN_DISTANCE:
        b.emit(pool[order[k % len(order)]])
        k += 1


def _emit_some(b: _PassageBuilder, pool: Sequence[str], lo: int, hi: int) -> None:
    """``pool`` から重ならないように ``lo``〜``hi`` 文を選んで足す。"""
    for t in b.rng.sample(pool, b.rng.randint(lo, hi)):
        b.emit(t)


def _story(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.ctx["spot"] = rng.choice(_BANK["place"])
    intro = rng.choice(_STORY_INTRO)
    b.emit(intro)
    b.emit(_STORY_SETTING[1] if intro.startswith("{season}") else rng.choice(_STORY_SETTING))
    b.emit(rng.choice(_STORY_OUTING))
    scene = list(_STORY_SCENE)
    talk = list(_STORY_TALK)
    rng.shuffle(scene)
    rng.shuffle(talk)
    # 場面の描写と会話を交互に足していき、目標の距離に近づいたら帰り道の文を置く。
    k = 0
    while b.gap() < target_gap - 40 and k < 10:
        b.emit((scene if k % 2 == 0 else talk)[k // 2])
        k += 1
    _emit_some(b, _STORY_RETURN, 1, 2)
    while b.gap() < NAME_MIN_DISTANCE:  # pragma: no cover - 保険
        b.emit(scene[-1])
    b.emit(rng.choice(_STORY_REF))
    _emit_some(b, _STORY_END, 0, 2)


def _diary(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.emit(rng.choice(_DIARY_INTRO))
    _emit_some(b, _DIARY_MORNING, 0, 2)
    _fill_until(b, _DIARY_DAY, target_gap - 40, max_sentences=8)
    _emit_some(b, _DIARY_EVENING, 1, 2)
    b.emit(rng.choice(_DIARY_REF))
    b.emit(rng.choice(_DIARY_END))


def _talk(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    b.emit(rng.choice(_TALK_INTRO))
    _fill_until(b, _TALK_MID, target_gap)
    b.emit(rng.choice(_TALK_REF))


def _howto(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    title, experts, steps, tips = rng.choice(_HOWTO_TOPICS)
    b.ctx["title"] = title
    b.ctx["expert"] = rng.choice(experts)
    b.emit(rng.choice(_HOWTO_INTRO))
    quote_at = rng.randrange(5)
    for i, step in enumerate(steps):
        b.emit(rng.choice(_STEP_CONNECT[i]) + step + "。")
        if rng.random() < 0.3:
            b.emit("{step_comment}")
        if i == quote_at:
            b.emit(rng.choice(_HOWTO_QUOTE), quote_pool=tips)
    if quote_at == 4:
        b.emit(rng.choice(_HOWTO_QUOTE), quote_pool=tips)
    while b.gap() < NAME_MIN_DISTANCE:  # 手順が短いときの保険 (実際にはほぼ起きない)
        b.emit("{step_comment}")
    b.emit(rng.choice(_HOWTO_REF))
    b.emit(rng.choice(_HOWTO_END))


def _letter(b: _PassageBuilder, target_gap: int) -> None:
    rng = b.rng
    intro = rng.choice(_LETTER_INTRO)
    b.emit(intro)
    if intro.endswith("\n"):
        b.emit("お元気ですか。")
    b.emit("こちらでは、{letter_season}。")
    _fill_until(b, _LETTER_MID, min(target_gap, 200), max_sentences=6)
    b.emit(rng.choice(_LETTER_REF))
    b.emit(rng.choice(_LETTER_END))


_PASSAGE_KINDS: tuple[tuple[Callable[[_PassageBuilder, int], None], float], ...] = (
    (_story, 0.35), (_diary, 0.25), (_talk, 0.15), (_howto, 0.15), (_letter, 0.10),
)


def _make_passage(rng: random.Random) -> tuple[str, list[LongRangeItem]]:
    kinds = [k for k, _ in _PASSAGE_KINDS]
    weights = [w for _, w in _PASSAGE_KINDS]
    for _ in range(100):
        make = rng.choices(kinds, weights)[0]
        family = rng.choice(_FAMILY_NAMES)
        given = rng.choice(GIVEN_NAMES)
        ctx = {"who": rng.choice(_BANK["who"]), "me": rng.choice(("わたし", "ぼく", "私"))}
        b = _PassageBuilder(rng, family, given, ctx)
        make(b, rng.randint(NAME_MIN_DISTANCE, NAME_TARGET_MAX_DISTANCE))
        text = b.text()
        # 名前は紹介と再登場の 2 回だけ (偶然ほかの語の中に現れたら作り直す)。
        if text.count(given) == 2 and PASSAGE_SEPARATOR not in text:
            return text, b.items
    raise RuntimeError("passage を作れませんでした")  # pragma: no cover


def generate_corpus(seed: int = 0, *, min_chars: int = DEFAULT_MIN_CHARS) -> Corpus:
    """この本の学習用コーパスを生成する (A-1 §2「コーパス」で導入)。

    テンプレートと語彙リスト (すべてこのモジュールに書いたもの) から、日常の小さな
    物語・日記・会話・説明文・手紙の passage を、合計が ``min_chars`` 文字以上に
    なるまで作る。同じ ``seed`` なら毎回まったく同じ本文になる (Python 標準の
    ``random.Random(seed)`` だけを使う)。

    各 passage には長距離依存が入っている。

    - 人名: 冒頭で「姓+名」を紹介し、40 字以上あとで名だけをもう一度書く。
      直前の文脈は固定の言い回し (例:「いちばん早く起きたのは」) なので、どの名前かは
      紹介の部分を覚えていないと当てられない。
    - 引用: 「…」の中身は 10〜60 字。閉じかっこの位置は中身の長さしだい。

    これらは :class:`LongRangeItem` として ``Corpus.items`` に記録される。
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed には整数を渡してください (受け取った値: {seed!r})")
    rng = random.Random(seed)
    passages: list[str] = []
    items: list[LongRangeItem] = []
    starts: list[int] = []
    total = 0
    while total < min_chars:
        text, p_items = _make_passage(rng)
        start = total + (len(PASSAGE_SEPARATOR) if passages else 0)
        starts.append(start)
        passages.append(text)
        items.extend(it.shifted(start) for it in p_items)
        total = start + len(text)
    return Corpus(
        text=PASSAGE_SEPARATOR.join(passages), passages=passages, items=items,
        seed=seed, _starts=starts,
    )


# ---------------------------------------------------------------------------
# 読者自身のテキストを読む
# ---------------------------------------------------------------------------

_AOZORA_SYMBOL_NOTE = "【テキスト中に現れる記号について】"
_HYPHEN_LINE_RE = re.compile(r"^[-－]{10,}\s*$")
_RUBY_RE = re.compile(r"《[^《》\n]*》")
_ANNOTATION_RE = re.compile(r"※?［＃[^］\n]*］")
_FOOTER_RE = re.compile(r"^底本：", re.MULTILINE)

_SJIS_HINT = (
    "青空文庫のテキストは Shift_JIS (cp932) で保存されていることが多いので、"
    "`iconv -f SHIFT_JIS -t UTF-8 元のファイル.txt > utf8版.txt` などで UTF-8 に変換するか、"
    "load_text(path, encoding='cp932') のように文字コードを指定してください。"
)


def _looks_like_aozora(text: str) -> bool:
    return (
        _AOZORA_SYMBOL_NOTE in text
        or "［＃" in text
        or _FOOTER_RE.search(text) is not None
        or _RUBY_RE.search(text) is not None
    )


def strip_aozora_markup(text: str) -> str:
    """青空文庫形式の注記を取り除き、本文だけを返す (A-1 §2「コーパス」で導入)。

    取り除くもの: 冒頭の表題・著者名と、ハイフンの行 ``-----`` ではさまれた
    【テキスト中に現れる記号について】の説明、``底本：`` で始まる行から末尾まで、
    ルビ ``《…》``、ルビの始まりを示す ``｜``、入力者注 ``［＃…］``
    (外字注記 ``※［＃…］`` は ※ ごと取り除く)。改行は ``\\n`` にそろえてから渡すこと。
    """
    lines = text.split("\n")
    # 1) ヘッダー: ハイフン行で囲まれた記号の説明までを捨てる。
    hyphens = [i for i, line in enumerate(lines[:80]) if _HYPHEN_LINE_RE.match(line)]
    if len(hyphens) >= 2:
        lines = lines[hyphens[1] + 1 :]
    elif _FOOTER_RE.search(text):
        # 記号の説明がないファイル: 最初の空行までの短い行 (表題・著者名) を捨てる。
        head = 0
        while head < len(lines) and not lines[head].strip():
            head += 1
        end = head
        while end < len(lines) and lines[end].strip():
            end += 1
        if 0 < end - head <= 4 and all(len(x.strip()) <= 40 for x in lines[head:end]):
            lines = lines[end:]
    # 2) フッター: 「底本：」で始まる行から最後まで。
    for i, line in enumerate(lines):
        if line.startswith("底本："):
            lines = lines[:i]
            break
    # 3) ルビ・注記。注記だけの行 (［＃改ページ］など) は行ごと消す。
    out: list[str] = []
    for line in lines:
        cleaned = _ANNOTATION_RE.sub("", line)
        cleaned = _RUBY_RE.sub("", cleaned).replace("｜", "").rstrip()
        if line.strip() and not cleaned.strip():
            continue
        if not cleaned.strip() and out and not out[-1].strip():
            continue  # 空行が続くときは 1 行にまとめる
        out.append(cleaned)
    return "\n".join(out).strip("\n")


def load_text(
    path: str | os.PathLike[str],
    *,
    aozora: bool | None = None,
    encoding: str = "utf-8",
) -> str:
    """読者自身のテキストファイルを読み、本文を返す (A-1 §2「コーパス」で導入)。

    - 文字コードは既定で UTF-8。先頭の BOM は取り除き、改行 (CRLF / CR) は ``\\n`` にそろえる。
      ``encoding='cp932'`` のように指定すればその文字コードで読む。``encoding='auto'``
      なら UTF-8 → cp932 (Shift_JIS) の順に試す。
    - ``aozora=None`` (既定) なら青空文庫の記法 (ルビ《》・注記［＃］・底本：など) を
      自動で見分け、見つかれば :func:`strip_aozora_markup` で取り除く。``True`` / ``False``
      で強制できる。
    - ファイルがない・ディレクトリである・中身が空・UTF-8 で読めない、といった場合は
      日本語のメッセージ付きで :class:`CorpusError` を送出する。
    """
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"ファイルが見つかりません: {p} (パスのつづりと、今いるフォルダを確かめてください)")
    if p.is_dir():
        raise CorpusError(f"{p} はフォルダ (ディレクトリ) です。テキストファイルのパスを指定してください。")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise CorpusError(f"ファイル {p} を読めませんでした: {e}") from e

    enc = encoding.lower().replace("_", "-")
    if enc == "auto":
        candidates = ["utf-8", "cp932"]
    else:
        candidates = [encoding]
    text: str | None = None
    first_error: UnicodeDecodeError | None = None
    for cand in candidates:
        try:
            text = raw.decode("utf-8-sig" if cand.lower().replace("_", "-") in ("utf-8", "utf8") else cand)
            break
        except UnicodeDecodeError as e:
            first_error = first_error or e
        except LookupError as e:
            raise CorpusError(f"文字コード {cand!r} は知らない名前です (例: 'utf-8', 'cp932')。") from e
    if text is None:
        assert first_error is not None
        if candidates[0].lower().replace("_", "-") in ("utf-8", "utf8"):
            raise CorpusError(
                f"ファイル {p} は UTF-8 として読めません ({first_error.start} バイト目)。"
                + _SJIS_HINT
            ) from first_error
        raise CorpusError(
            f"ファイル {p} は {encoding} として読めません ({first_error.start} バイト目)。"
            "文字コードを確かめてください。"
        ) from first_error

    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"ファイル {p} は空です (空白と改行しかありません)。")
    if aozora is None:
        aozora = _looks_like_aozora(text)
    if aozora:
        text = strip_aozora_markup(text)
        if not text.strip():
            raise CorpusError(
                f"ファイル {p} から青空文庫の注記を取り除いたら、本文が残りませんでした。"
            )
    else:
        text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text


# ---------------------------------------------------------------------------
# 文字トークナイザ
# ---------------------------------------------------------------------------


class CharTokenizer:
    """文字単位のトークナイザ (A-1 §3「文字トークナイザ」で導入)。

    与えたテキストに現れる文字を Unicode のコードポイント順に並べ、1 から順に
    番号 (id) を振る。**id 0 は未知文字のために予約**してあり、作るときに
    見なかった文字はすべて 0 になる (``decode`` では ``unk_char`` = ``"\\ufffd"`` に戻る)。
    同じテキストからは、いつも同じ対応表ができる。
    """

    unk_id: int = 0
    unk_char: str = "\ufffd"

    def __init__(self, text: str) -> None:
        chars = sorted(set(text) - {self.unk_char})
        self.itos: list[str] = [self.unk_char] + chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        """語彙の大きさ (未知文字の id 0 を含む)。"""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """文字列を id の列にする (知らない文字は 0)。"""
        get = self.stoi.get
        return [get(c, 0) for c in text]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """id の列を文字列に戻す (範囲外の id も未知文字として扱う)。"""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        n = len(self.itos)
        return "".join(self.itos[i] if 0 <= i < n else self.unk_char for i in ids)

    def encode_tensor(self, text: str) -> torch.Tensor:
        """文字列を ``torch.long`` の 1 次元テンソルにする。"""
        return torch.tensor(self.encode(text), dtype=torch.long)


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m llmbook.corpus`` — コーパスの統計を JSON で表示する (``--out`` で本文も書き出す)。"""
    import argparse

    parser = argparse.ArgumentParser(description="この本の学習用コーパスを生成して統計を表示する")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="本文を UTF-8 で書き出すファイル")
    args = parser.parse_args(argv)
    corpus = generate_corpus(args.seed)
    if args.out is not None:
        args.out.write_text(corpus.text + "\n", encoding="utf-8")
    print(json.dumps(corpus.stats(), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    _main()

"""A small domain grammar for the embedded demo corpus: what people say to a home assistant.

Smart-home commands, timers and alarms, calendar dates, addresses and navigation, phone calls and
messages, music, weather, shopping lists, arithmetic questions and simple statements. Sentences
come out in the transcript convention of :mod:`w2v2.data.text` (upper-case A-Z, apostrophes
inside words, single spaces, numbers written as words), so they double as CTC targets and as
n-gram language-model text. Expansion is a plain recursive choice over the rules below, driven by
a ``random.Random`` that the caller seeds: the same seed gives the same sentences.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .text import number_to_words, ordinal_to_words, two_digits, year_to_words

_SLOT = re.compile(r"<(\w+)>")


def _words(s: str) -> tuple[str, ...]:
    """Alternatives separated by commas (so that alternatives may hold several words)."""
    return tuple(w.strip() for w in s.split(","))


def digit_string(digits: str) -> str:
    """Phone numbers read digit by digit, zero as OH."""
    return " ".join("OH" if d == "0" else number_to_words(int(d)) for d in digits)


def _clock_time(rng: random.Random) -> str:
    hour = number_to_words(rng.randint(1, 12))
    minute = rng.choice((0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50, rng.randint(1, 59)))
    form = rng.randrange(4)
    if form == 0 or minute == 0:
        return f"{hour} O'CLOCK" if rng.random() < 0.7 else hour
    if form == 1 and minute in (15, 30, 45):
        return {15: f"QUARTER PAST {hour}", 30: f"HALF PAST {hour}", 45: f"QUARTER TO {hour}"}[minute]
    return f"{hour} {two_digits(minute)}"


def _phone_number(rng: random.Random) -> str:
    return digit_string("".join(str(rng.randrange(10)) for _ in range(rng.choice((7, 10)))))


def _price(rng: random.Random) -> str:
    dollars, cents = rng.randint(1, 250), rng.choice((0, 0, 25, 50, 75, 99, rng.randint(1, 99)))
    unit = "DOLLAR" if dollars == 1 else "DOLLARS"
    return f"{number_to_words(dollars)} {unit}" + (f" AND {number_to_words(cents)} CENTS" if cents else "")


def _quantity(rng: random.Random) -> str:
    n = rng.choice((1, 2, 2, 3, 4, 5, 6, 10, 12, rng.randint(1, 24)))
    return ("A" if rng.random() < 0.5 else "ONE") if n == 1 else number_to_words(n)


def _number(lo: int, hi: int) -> Callable[[random.Random], str]:
    return lambda rng: number_to_words(rng.randint(lo, hi))


def _ordinal(lo: int, hi: int) -> Callable[[random.Random], str]:
    return lambda rng: ordinal_to_words(rng.randint(lo, hi))


NUMBER_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "time": _clock_time,
    "phone": _phone_number,
    "price": _price,
    "quantity": _quantity,
    "year": lambda rng: year_to_words(rng.randint(1905, 2035)),
    "house": lambda rng: number_to_words(rng.choice((rng.randint(1, 99), rng.randint(100, 999),
                                                      rng.randint(1000, 9999)))),
    "day_ordinal": _ordinal(1, 31),
    "street_ordinal": _ordinal(1, 99),
    "temperature": _number(55, 85),
    "percent": lambda rng: number_to_words(rng.choice((10, 20, 25, 30, 40, 50, 60, 75, 80, 90, 100))),
    "minutes": _number(2, 59),
    "hours": _number(2, 12),
    "volume": _number(1, 10),
    "small": _number(0, 20),
    "big": _number(21, 999),
    "zip": lambda rng: digit_string(f"{rng.randrange(100000):05d}"),
}

RULES: dict[str, tuple[str, ...]] = {
    "sentence": ("<home>", "<home>", "<timer>", "<calendar>", "<navigation>", "<phone_call>", "<media>",
                 "<weather>", "<shopping>", "<question>", "<statement>", "<statement>"),
    # smart home
    "home": (
        "<please> TURN <on_off> THE <room> <device>", "<please> TURN THE <device> IN THE <room> <on_off>",
        "<please> SWITCH <on_off> THE <device>", "<please> SET THE THERMOSTAT TO <temperature> DEGREES",
        "<please> SET THE <room> THERMOSTAT TO <temperature> DEGREES <when>",
        "<please> DIM THE <room> LIGHTS TO <percent> PERCENT", "<please> <open_close> THE <room> <opening>",
        "<please> <lock> THE <door> DOOR", "IS THE <device> IN THE <room> STILL <on_off>",
        "DID I LEAVE THE <device> <on_off>", "MAKE THE <room> A LITTLE <warmer>",
        "<please> START THE <appliance> AT <time> <daypart>", "WHEN WILL THE <appliance> BE DONE",
        "SET THE <room> LIGHTS TO <colour>", "<please> TURN THE HEATING DOWN BY <small> DEGREES",
        "IT'S TOO <hot_cold> IN THE <room>", "<please> TURN OFF ALL THE LIGHTS <when>",
        "IS THE <door> DOOR LOCKED", "WHO IS AT THE <door> DOOR",
    ),
    "please": ("", "", "", "PLEASE", "CAN YOU", "COULD YOU", "I'D LIKE YOU TO", "HEY ASSISTANT"),
    "on_off": _words("ON, OFF"),
    "open_close": _words("OPEN, CLOSE, RAISE, LOWER"),
    "lock": _words("LOCK, UNLOCK"),
    "warmer": _words("WARMER, COOLER, BRIGHTER, DARKER, QUIETER"),
    "hot_cold": _words("HOT, COLD, DARK, BRIGHT, NOISY, STUFFY"),
    "room": _words("KITCHEN, LIVING ROOM, BEDROOM, BATHROOM, HALLWAY, GARAGE, OFFICE, BASEMENT, ATTIC, "
                   "DINING ROOM, NURSERY, GUEST ROOM, LAUNDRY ROOM, PORCH, GARDEN, STUDY"),
    "device": _words("LIGHTS, LAMP, FAN, HEATER, AIR CONDITIONER, TELEVISION, RADIO, SPEAKER, CEILING LIGHT, "
                     "NIGHT LIGHT, HUMIDIFIER, PRINTER, COFFEE MACHINE, KETTLE, OVEN, SPRINKLERS, "
                     "SECURITY CAMERA, ALARM SYSTEM"),
    "appliance": _words("DISHWASHER, WASHING MACHINE, DRYER, OVEN, ROBOT VACUUM, COFFEE MACHINE, "
                        "BREAD MAKER, SLOW COOKER"),
    "opening": _words("BLINDS, CURTAINS, WINDOW, SHUTTERS, SKYLIGHT, GARAGE DOOR, GATE"),
    "door": _words("FRONT, BACK, SIDE, GARAGE, CELLAR, PATIO"),
    "colour": _words("RED, BLUE, GREEN, WARM WHITE, COOL WHITE, ORANGE, PURPLE, PINK, YELLOW"),
    # timers, alarms, reminders
    "timer": (
        "SET A TIMER FOR <duration>", "SET A <food> TIMER FOR <duration>", "<please> WAKE ME UP AT <time> <when>",
        "SET AN ALARM FOR <time> <daypart>", "REMIND ME TO <task> <when> AT <time>",
        "REMIND ME TO <task> IN <duration>", "HOW MUCH TIME IS LEFT ON THE <food> TIMER",
        "CANCEL THE ALARM FOR <time>", "SNOOZE THE ALARM FOR <minutes> MINUTES",
        "DON'T LET ME FORGET TO <task> <when>",
    ),
    "duration": ("<minutes> MINUTES", "<hours> HOURS", "ONE HOUR AND <minutes> MINUTES", "HALF AN HOUR",
                 "<minutes> SECONDS", "A QUARTER OF AN HOUR"),
    "when": _words(", , TODAY, TOMORROW, TONIGHT, THIS AFTERNOON, THIS EVENING, TOMORROW MORNING, "
                   "NEXT WEEK, ON MONDAY, ON TUESDAY, ON WEDNESDAY, ON THURSDAY, ON FRIDAY, ON SATURDAY, "
                   "ON SUNDAY, THIS WEEKEND, EVERY DAY, EVERY MORNING"),
    "daypart": _words(", IN THE MORNING, IN THE AFTERNOON, IN THE EVENING, AT NIGHT"),
    "task": _words("CALL MY MOTHER, TAKE OUT THE RUBBISH, WATER THE PLANTS, FEED THE CAT, WALK THE DOG, "
                   "PAY THE ELECTRICITY BILL, BOOK A DENTIST APPOINTMENT, PICK UP THE DRY CLEANING, "
                   "RENEW MY PASSPORT, BUY A BIRTHDAY PRESENT, TAKE MY MEDICINE, CHECK THE MAILBOX, "
                   "SEND THE REPORT, CHARGE MY PHONE, LOCK THE BACK DOOR, DEFROST THE CHICKEN, "
                   "RETURN THE LIBRARY BOOKS, STRETCH, DRINK SOME WATER, CALL THE PLUMBER"),
    # calendar and dates
    "calendar": (
        "SCHEDULE A <meeting> WITH <name> ON <date> AT <time>", "WHAT'S ON MY CALENDAR <when>",
        "MOVE MY <meeting> WITH <name> TO <weekday> AT <time>", "<name>'S BIRTHDAY IS ON <date>",
        "ADD <event> TO MY CALENDAR ON <date>", "WHEN IS MY NEXT <meeting> WITH <name>",
        "I WAS BORN ON <date> <year>", "THE <event> IS ON <weekday> <date>",
        "HOW MANY DAYS UNTIL <date>", "CANCEL MY <meeting> ON <weekday>", "WHAT DAY OF THE WEEK IS <date>",
    ),
    "date": ("THE <day_ordinal> OF <month>", "<month> <day_ordinal>", "<month> THE <day_ordinal>"),
    "weekday": _words("MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY"),
    "month": _words("JANUARY, FEBRUARY, MARCH, APRIL, MAY, JUNE, JULY, AUGUST, SEPTEMBER, OCTOBER, "
                    "NOVEMBER, DECEMBER"),
    "meeting": _words("MEETING, CALL, LUNCH, DINNER, DENTIST APPOINTMENT, JOB INTERVIEW, COFFEE, TENNIS GAME, "
                      "PIANO LESSON, DOCTOR'S APPOINTMENT"),
    "event": _words("THE SCHOOL CONCERT, THE FOOTBALL MATCH, MY SISTER'S WEDDING, THE TEAM DINNER, "
                    "THE BOOK CLUB, THE FARMERS MARKET, A HAIRCUT, THE PARENTS EVENING, THE COMPANY PICNIC, "
                    "OUR ANNIVERSARY, THE CAR SERVICE, A FLIGHT TO <city>"),
    # addresses and navigation
    "navigation": (
        "<please> NAVIGATE TO <address>", "HOW LONG DOES IT TAKE TO DRIVE TO <city>",
        "SEND THE PACKAGE TO <address> <city>", "MY ADDRESS IS <address> <city> <zip>",
        "FIND A <shop> NEAR <address>", "IS THERE MUCH TRAFFIC ON THE WAY TO <city>",
        "HOW FAR IS <city> FROM <city>", "TAKE ME TO THE NEAREST <shop>",
        "THE <shop> ON <street> CLOSES AT <time>", "WE LIVE AT <address> NEAR THE <landmark>",
        "TURN LEFT AFTER THE <landmark> AND THEN RIGHT ONTO <street>",
    ),
    "address": ("<house> <street>", "<house> <street>", "FLAT <small> <house> <street>"),
    "street": ("<street_name> <street_type>", "<street_name> <street_type>", "<street_ordinal> <street_type>"),
    "street_name": _words("MAPLE, OAK, ELM, PINE, CEDAR, WILLOW, CHESTNUT, BIRCH, WASHINGTON, LINCOLN, "
                          "JEFFERSON, MADISON, FRANKLIN, CHURCH, MILL, MARKET, STATION, BRIDGE, RIVER, LAKE, "
                          "HILL, PARK, SPRING, MEADOW, ORCHARD, HARBOR, SUNSET, HIGHLAND, VICTORIA, KING, QUEEN"),
    "street_type": _words("STREET, ROAD, AVENUE, LANE, DRIVE, BOULEVARD, COURT, PLACE, WAY, TERRACE, CRESCENT"),
    "city": _words("BOSTON, CHICAGO, DENVER, SEATTLE, PORTLAND, AUSTIN, DALLAS, HOUSTON, ATLANTA, MIAMI, "
                   "PHOENIX, DETROIT, TORONTO, MONTREAL, VANCOUVER, LONDON, MANCHESTER, LIVERPOOL, EDINBURGH, "
                   "GLASGOW, DUBLIN, CARDIFF, BRISTOL, OXFORD, CAMBRIDGE, SYDNEY, MELBOURNE, AUCKLAND, PARIS, "
                   "BERLIN, MADRID, ROME, LISBON, AMSTERDAM, VIENNA, PRAGUE, TOKYO, NEW YORK, SAN FRANCISCO, "
                   "LOS ANGELES, NEW ORLEANS, SALT LAKE CITY"),
    "shop": _words("PHARMACY, SUPERMARKET, BAKERY, PETROL STATION, GAS STATION, COFFEE SHOP, HARDWARE STORE, "
                   "POST OFFICE, BANK, LIBRARY, HOSPITAL, RESTAURANT, PIZZA PLACE, BOOKSHOP, FLORIST, "
                   "BUTCHER, GARDEN CENTRE, CINEMA"),
    "landmark": _words("CHURCH, TRAIN STATION, PARK, SCHOOL, TOWN HALL, MUSEUM, STADIUM, ROUNDABOUT, "
                       "TRAFFIC LIGHTS, OLD BRIDGE, FIRE STATION, SHOPPING CENTRE"),
    # phone and messages
    "phone_call": (
        "CALL <name> <phone_where>", "<please> CALL <phone>", "DIAL <phone>",
        "SEND A MESSAGE TO <name> SAYING <message>", "TEXT <name> THAT <message>",
        "READ MY NEW MESSAGES", "<name>'S NUMBER IS <phone>", "TELL <name> <message>",
        "DID <name> CALL <when>",
    ),
    "phone_where": _words(", , ON THE MOBILE, AT HOME, AT WORK, ON SPEAKER, BACK"),
    "message": ("I'LL BE <minutes> MINUTES LATE", "DINNER IS READY", "I'M ON MY WAY HOME",
                "DON'T FORGET THE <item>", "CAN YOU PICK UP THE KIDS AT <time>",
                "THE <meeting> IS MOVED TO <weekday>", "I'M STUCK IN TRAFFIC ON <street>",
                "WE'RE OUT OF <item>", "SEE YOU AT THE <shop> AT <time>", "HAPPY BIRTHDAY",
                "THANKS FOR YESTERDAY", "CALL ME WHEN YOU GET THIS"),
    # music and media
    "media": (
        "PLAY SOME <genre> MUSIC IN THE <room>", "PLAY THE NEXT SONG", "SKIP THIS SONG", "PAUSE THE MUSIC",
        "TURN THE VOLUME <up_down> TO <volume>", "TURN IT <up_down> A BIT", "PLAY THE LATEST <podcast>",
        "PUT ON THE <station> ON THE <device>", "WHAT SONG IS THIS", "PLAY MY <playlist> PLAYLIST",
        "SHUFFLE <genre> SONGS FROM THE <decade>", "REPEAT THAT SONG <small> TIMES",
    ),
    "genre": _words("JAZZ, CLASSICAL, ROCK, POP, FOLK, COUNTRY, BLUES, REGGAE, SOUL, HIP HOP, DANCE, "
                    "ELECTRONIC, PIANO, OPERA, GOSPEL, METAL, RELAXING, CHRISTMAS"),
    "up_down": _words("UP, DOWN"),
    "podcast": _words("NEWS PODCAST, SCIENCE PODCAST, HISTORY PODCAST, COMEDY SHOW, AUDIOBOOK CHAPTER, "
                      "COOKING SHOW, SPORTS REPORT"),
    "station": _words("NEWS, WEATHER REPORT, MORNING SHOW, TRAFFIC REPORT, CLASSICAL STATION, "
                      "FOOTBALL COMMENTARY"),
    "playlist": _words("WORKOUT, DINNER PARTY, SLEEP, DRIVING, STUDY, SUMMER, RAINY DAY, FAVOURITES"),
    "decade": _words("SIXTIES, SEVENTIES, EIGHTIES, NINETIES"),
    # weather
    "weather": (
        "WHAT'S THE WEATHER LIKE IN <city> <when>", "WILL IT <weather_verb> IN <city> <when>",
        "HOW <hot_cold> WILL IT BE <when>", "DO I NEED AN UMBRELLA <when>",
        "IT WILL BE <temperature> DEGREES AND <condition> IN <city> ON <weekday>",
        "WHAT TIME IS SUNRISE <when>", "IS IT WINDY OUTSIDE", "WHAT'S THE FORECAST FOR <weekday>",
        "TOMORROW WILL BE <condition> WITH A HIGH OF <temperature>",
    ),
    "weather_verb": _words("RAIN, SNOW, BE SUNNY, BE WINDY, BE FOGGY, FREEZE, THUNDER, CLEAR UP"),
    "condition": _words("SUNNY, CLOUDY, RAINY, WINDY, FOGGY, STORMY, CLEAR, PARTLY CLOUDY, HUMID, DRY, MILD"),
    # shopping
    "shopping": (
        "ADD <quantity> <item> TO THE SHOPPING LIST", "PUT <item> ON MY LIST", "DO WE HAVE ANY <item> LEFT",
        "ORDER <quantity> <item> FROM THE <shop>", "REMOVE <item> FROM THE LIST",
        "WHAT'S ON MY SHOPPING LIST", "HOW MUCH ARE THE <item> AT THE <shop>",
        "THE <item> COST <price>", "WE NEED <quantity> <item> FOR <event>",
    ),
    "item": _words("APPLES, BANANAS, ORANGES, LEMONS, GRAPES, STRAWBERRIES, TOMATOES, POTATOES, ONIONS, "
                   "CARROTS, MUSHROOMS, EGGS, MILK, BUTTER, CHEESE, YOGURT, BREAD, RICE, PASTA, FLOUR, SUGAR, "
                   "COFFEE, TEA, ORANGE JUICE, CHICKEN, SAUSAGES, SALMON, BEANS, CEREAL, BISCUITS, CHOCOLATE, "
                   "OLIVE OIL, PEPPER, SALT, SOAP, TOOTHPASTE, SHAMPOO, BATTERIES, LIGHT BULBS, NAPKINS, "
                   "DOG FOOD, CAT FOOD, PAPER TOWELS, CANDLES, FLOWERS"),
    "food": _words("PASTA, RICE, EGG, PIZZA, CAKE, BREAD, TEA, ROAST, COOKIE, SOUP"),
    # questions
    "question": (
        "WHAT TIME IS IT IN <city>", "WHAT IS <small> <operator> <small>", "WHAT'S <big> <operator> <small>",
        "HOW MANY <unit> ARE IN A <unit>", "WHAT'S THE DATE <when>", "TODAY IS <weekday> THE <day_ordinal> OF <month>",
        "WHAT YEAR DID <name> MOVE TO <city>", "HOW DO YOU SPELL <item>", "WHAT'S <percent> PERCENT OF <big>",
        "CONVERT <small> <unit> TO <unit>", "WHO WON THE GAME LAST NIGHT", "IS THE <shop> OPEN ON <weekday>",
    ),
    "operator": _words("PLUS, MINUS, TIMES, DIVIDED BY"),
    "unit": _words("SECONDS, MINUTES, HOURS, DAYS, WEEKS, OUNCES, POUNDS, GRAMS, KILOGRAMS, CUPS, LITRES, "
                   "MILES, KILOMETRES, FEET, INCHES, METRES"),
    # simple statements
    "statement": (
        "<name> <verb_past> THE <adjective> <thing> <preposition> THE <place>",
        "THE <adjective> <thing> IS <preposition> THE <place>",
        "<name> AND <name> WILL MEET AT THE <shop> AT <time>", "MY <relative> LIVES AT <address> IN <city>",
        "<name> MOVED TO <city> IN <year>", "THE <thing> <verb_past_intrans> <when>",
        "I THINK <name> LEFT THE <thing> <preposition> THE <place>", "<name> BOUGHT <quantity> <item> FOR <price>",
        "OUR <relative> IS VISITING FROM <city> ON <date>", "THE TRAIN TO <city> LEAVES AT <time>",
        "THERE ARE <small> <item> IN THE <room>", "<name> WAS BORN IN <city> IN <year>",
    ),
    "name": _words("ALICE, BOB, CAROL, DAVID, EMMA, FRANK, GRACE, HENRY, ISABEL, JACK, KATE, LIAM, MARIA, "
                   "NOAH, OLIVIA, PETER, QUINN, ROSE, SAM, THOMAS, UMA, VICTOR, WENDY, XAVIER, YVONNE, ZOE, "
                   "GRANDMA, GRANDPA, MUM, DAD, AUNT SUSAN, UNCLE JOE, DOCTOR PATEL, MISTER JONES, MISSUS SMITH, "
                   "SOPHIE, OSCAR, HANNAH, LUCAS, CHLOE, ETHAN, MIA, JAMES, AMELIA, LEO, RUBY"),
    "relative": _words("SISTER, BROTHER, MOTHER, FATHER, AUNT, UNCLE, COUSIN, GRANDMOTHER, GRANDFATHER, "
                       "NEIGHBOUR, BEST FRIEND, DAUGHTER, SON"),
    "verb_past": _words("FOUND, MOVED, PAINTED, BROKE, FIXED, CLEANED, HID, CARRIED, LEFT, PUT, DROPPED, "
                        "WRAPPED, SOLD, BORROWED, RETURNED"),
    "verb_past_intrans": _words("STOPPED WORKING, ARRIVED, BROKE, WAS DELIVERED, WENT MISSING, STARTED BEEPING"),
    "adjective": _words("OLD, NEW, RED, BLUE, SMALL, BIG, HEAVY, BROKEN, WOODEN, SHINY, DUSTY, EMPTY, "
                        "FAVOURITE, SPARE, GREEN, YELLOW"),
    "thing": _words("CHAIR, TABLE, BOX, UMBRELLA, KEYS, BICYCLE, LADDER, SUITCASE, BLANKET, CLOCK, MIRROR, "
                    "VASE, BASKET, TOOLBOX, REMOTE CONTROL, PARCEL, LAPTOP, WALLET, JACKET, HAT"),
    "preposition": _words("IN, ON, UNDER, BEHIND, NEXT TO, NEAR, INSIDE, OUTSIDE"),
    "place": _words("KITCHEN, GARAGE, HALLWAY, SHED, CUPBOARD, CAR, ATTIC, BASEMENT, GARDEN, OFFICE, "
                    "BEDROOM, STAIRS, SOFA, WARDROBE, DOOR"),
}


@dataclass(frozen=True)
class Grammar:
    """Context-free rules over slots written ``<name>``: each expands to a uniformly drawn
    alternative of ``rules[name]`` (recursively) or to ``numbers[name](rng)``."""

    rules: Mapping[str, Sequence[str]]
    numbers: Mapping[str, Callable[[random.Random], str]]
    start: str = "sentence"

    def expand(self, slot: str, rng: random.Random) -> str:
        if slot in self.numbers:
            return self.numbers[slot](rng)
        if slot not in self.rules:
            raise KeyError(f"grammar has no rule or number slot <{slot}>")
        template = rng.choice(self.rules[slot])
        return _SLOT.sub(lambda m: self.expand(m[1], rng), template)

    def sentence(self, rng: random.Random) -> str:
        return " ".join(self.expand(self.start, rng).split())

    def vocabulary(self) -> set[str]:
        """Every word the literal alternatives can produce (number words not included)."""
        return {w for alts in self.rules.values() for alt in alts for w in _SLOT.sub(" ", alt).split()
                if w != "'S"}


DEFAULT_GRAMMAR = Grammar(RULES, NUMBER_SLOTS)

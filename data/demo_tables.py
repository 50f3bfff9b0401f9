"""The word tables the demo gold sets are made from (read by make_demo_sets.py, beside it).

Every chat family is a lookup over one of these tables, so a tiny model can learn it in minutes;
see make_demo_sets.py for why the sets look the way they do.
"""

# A few short system prompts, drawn at random per episode in both splits, so the model learns
# that the instruction block does not change the answer (and chat works with any of them).
CHAT_SYSTEMS = (
    "You are MyPT, a helpful assistant.",
    "You are a helpful assistant. Answer briefly.",
    "Answer the user's question in one sentence.",
)
TOOL_SYSTEMS = (
    "You are MyPT. Use the calculator tool for arithmetic.",
    "You are a helpful assistant with a calculator tool.",
)

# -- fact tables ---------------------------------------------------------------------------------

CAPITALS = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"), ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Australia", "Canberra"), ("Greece", "Athens"),
    ("Turkey", "Ankara"), ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Belgium", "Brussels"),
    ("Switzerland", "Bern"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Cuba", "Havana"),
    ("Colombia", "Bogota"), ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"),
    ("Ethiopia", "Addis Ababa"), ("Romania", "Bucharest"), ("Ukraine", "Kyiv"),
    ("Iceland", "Reykjavik"), ("Pakistan", "Islamabad"),
)
COLOURS = (  # (thing as written mid-sentence, colour)
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("coal", "black"),
    ("a banana", "yellow"), ("a lemon", "yellow"), ("a tomato", "red"), ("a strawberry", "red"),
    ("a carrot", "orange"), ("a pumpkin", "orange"), ("milk", "white"), ("chocolate", "brown"),
    ("a frog", "green"), ("a crow", "black"), ("a plum", "purple"), ("an eggplant", "purple"),
    ("a flamingo", "pink"), ("the sun", "yellow"), ("a lime", "green"), ("an elephant", "grey"),
    ("a polar bear", "white"), ("blood", "red"), ("the sea", "blue"), ("a cherry", "red"),
)
FLIES = (  # (animal, can it fly): yes/no questions whose answer depends on the animal alone
    ("sparrow", True), ("eagle", True), ("owl", True), ("parrot", True), ("pigeon", True),
    ("bat", True), ("bee", True), ("butterfly", True), ("crow", True), ("swan", True),
    ("penguin", False), ("ostrich", False), ("dog", False), ("cat", False), ("fish", False),
    ("elephant", False), ("horse", False), ("snake", False), ("cow", False), ("kangaroo", False),
)
OPPOSITE_PAIRS = (
    ("hot", "cold"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("open", "closed"),
    ("early", "late"), ("full", "empty"), ("wet", "dry"), ("hard", "soft"), ("day", "night"),
    ("push", "pull"), ("loud", "quiet"), ("rich", "poor"), ("win", "lose"), ("strong", "weak"),
    ("thick", "thin"), ("inside", "outside"), ("north", "south"), ("east", "west"),
    ("true", "false"), ("always", "never"), ("buy", "sell"), ("clean", "dirty"),
    ("cheap", "expensive"),
)
PLURALS = (
    ("mouse", "mice"), ("child", "children"), ("man", "men"), ("woman", "women"),
    ("tooth", "teeth"), ("foot", "feet"), ("goose", "geese"), ("person", "people"),
    ("sheep", "sheep"), ("fish", "fish"), ("ox", "oxen"), ("leaf", "leaves"), ("knife", "knives"),
    ("wolf", "wolves"), ("box", "boxes"), ("baby", "babies"), ("city", "cities"), ("bus", "buses"),
    ("potato", "potatoes"), ("cactus", "cacti"), ("life", "lives"), ("cat", "cats"),
    ("dog", "dogs"), ("book", "books"),
)
SOUNDS = (
    ("dog", "woof"), ("cat", "meow"), ("cow", "moo"), ("sheep", "baa"), ("duck", "quack"),
    ("pig", "oink"), ("horse", "neigh"), ("owl", "hoot"), ("lion", "roar"), ("snake", "hiss"),
    ("frog", "ribbit"), ("mouse", "squeak"), ("bee", "buzz"), ("crow", "caw"),
    ("donkey", "hee-haw"), ("rooster", "cock-a-doodle-doo"),
)
YOUNG = (
    ("cat", "kitten"), ("dog", "puppy"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
    ("goat", "kid"), ("pig", "piglet"), ("duck", "duckling"), ("frog", "tadpole"),
    ("kangaroo", "joey"), ("bear", "cub"), ("deer", "fawn"), ("goose", "gosling"),
    ("swan", "cygnet"), ("owl", "owlet"), ("eagle", "eaglet"),
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
UNITS = (  # (unit, container, how many)
    ("seconds", "a minute", 60), ("minutes", "an hour", 60), ("hours", "a day", 24),
    ("days", "a week", 7), ("months", "a year", 12), ("weeks", "a year", 52),
    ("days", "a year", 365), ("days", "a leap year", 366), ("years", "a decade", 10),
    ("years", "a century", 100), ("centimetres", "a metre", 100), ("metres", "a kilometre", 1000),
    ("grams", "a kilogram", 1000), ("millimetres", "a centimetre", 10),
)

# Small talk: intent -> (fixed reply, training phrasings, held-out phrasings).
SMALLTALK = {
    "identity": ("I am MyPT, a small chat assistant.", (
        "Who are you?", "What are you?", "Tell me about yourself.", "Introduce yourself.",
        "Who am I talking to?", "Are you a bot?", "What kind of assistant are you?",
        "Who are you exactly?", "Tell me who I am talking to.", "Are you a human?", "What is MyPT?",
        "Say who you are."), (
        "Can you introduce yourself?", "Who am I chatting with?", "Tell me who you are.",
        "What exactly are you?")),
    "name": ("My name is MyPT.", (
        "What is your name?", "What's your name?", "Do you have a name?", "What should I call you?",
        "Tell me your name.", "What are you called?", "Your name?", "What do people call you?",
        "What name do you go by?", "Tell me your name, please.", "What is your name, assistant?",
        "Have you got a name?"), (
        "What is your name, please?", "May I know your name?", "Tell me what your name is.",
        "What name do you have?")),
    "abilities": ("I can answer short questions about facts and words.", (
        "What can you do?", "How can you help me?", "What are you able to do?",
        "What do you know about?", "What are you good at?", "What can I ask you?",
        "What can you help with?", "What kind of questions can you answer?", "What are you for?",
        "How can you be useful?", "What do you do?", "What help can you give?"), (
        "What are you able to help with?", "What can you help me with?",
        "What things can you do?", "What questions can you answer?")),
    "greeting": ("Hello! How can I help you?", (
        "Hello!", "Hi!", "Hi there!", "Hey!", "Hello, MyPT!", "Good morning!", "Hey there!",
        "Hello there!", "Hi, MyPT!", "Greetings!", "Hey MyPT!", "Good afternoon!", "Hello again!",
        "Good day!"), (
        "Hello hello!", "Hi again!", "Good morning, MyPT!", "Hey, good morning!")),
    "how_are_you": ("I am doing well, thank you.", (
        "How are you?", "How are you doing?", "How is it going?", "How are you today?",
        "How's it going?", "Are you doing well?", "How do you feel?", "How have you been?",
        "How is your day?", "How are things?", "Are you okay?", "How do you do?"), (
        "How are you doing today?", "How is your day going?", "How are you feeling?",
        "Are you well?")),
    "thanks": ("You are welcome!", (
        "Thanks!", "Thank you!", "Thank you very much!", "Thanks a lot!", "Many thanks!",
        "Thanks for your help!", "Thank you so much!", "Thanks, MyPT!", "Thank you, that helps!",
        "Thanks a bunch!", "Great, thanks!", "Thank you kindly!"), (
        "Thanks a lot, MyPT!", "Thank you for the help!", "Thanks so much!", "Thank you, MyPT!")),
    "goodbye": ("Goodbye! Have a nice day.", (
        "Goodbye!", "Bye!", "Bye bye!", "See you later!", "See you!", "I have to go now. Bye!",
        "Goodbye, MyPT!", "Talk to you later!", "Bye now!", "See you tomorrow!", "Good night!",
        "Catch you later!"), (
        "Bye, MyPT!", "See you soon!", "Goodbye for now!", "Bye for now!")),
}

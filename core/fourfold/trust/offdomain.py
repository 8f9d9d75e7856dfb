"""Questions from other fields and languages, and words no document uses: the
unanswerable side of answerability calibration, the same for every domain."""

OFF_DOMAIN_QUESTIONS = [
    "How long should I knead bread dough by hand?",
    "What temperature do I roast a whole chicken at?",
    "Which wine goes well with grilled salmon?",
    "How long should I proof a brioche dough?",
    "Who won the football world cup in 1998?",
    "How many players are on a volleyball team?",
    "What is the offside rule in ice hockey?",
    "How do I change a flat tyre on a bicycle?",
    "Why does my car engine make a clicking noise when starting?",
    "How often should I service a petrol lawnmower?",
    "How do I reverse a linked list in Python?",
    "What is the difference between TCP and UDP?",
    "How do I centre a div with CSS flexbox?",
    "Which sorting algorithm is fastest for nearly sorted arrays?",
    "How do I set up a Kubernetes ingress controller?",
    "What is the capital city of Australia?",
    "When did the Roman Empire fall?",
    "Who painted the ceiling of the Sistine Chapel?",
    "How far is the Moon from the Earth?",
    "Why is the sky blue during the day?",
    "How do I repot an orchid without damaging the roots?",
    "When should I prune apple trees in the garden?",
    "What is the best fertiliser for tomato plants?",
    "How do I train a puppy to stop biting?",
    "How much should I feed an adult cat each day?",
    "What are good exercises to learn the guitar chords?",
    "How do I tune a violin?",
    "Which chess opening is best for beginners?",
    "How do I knit a scarf for a beginner?",
    "What is a good itinerary for three days in Rome?",
    "Do I need a visa to visit Japan as a tourist?",
    "How do I book a cheap flight to Lisbon?",
    "What is the exchange rate between the yen and the euro?",
    "How do mortgage interest rates get set by banks?",
    "Should I invest in index funds or individual stocks?",
    "How do I fix a leaking kitchen tap?",
    "What paint finish is best for a bathroom ceiling?",
    "How do I lay laminate flooring over concrete?",
    "Which planet has the most moons?",
    "How do volcanoes form on the ocean floor?",
    "What is the plot of the novel Moby Dick?",
    "Who composed the Four Seasons concertos?",
    "How do I remove red wine stains from a carpet?",
    "What is the rule of thirds in photography?",
    "How do I clean a cast iron skillet?",
    "Quelle est la meilleure recette de tarte aux pommes ?",
    "Comment réparer une crevaison de vélo ?",
    "Wie backe ich ein Sauerteigbrot zu Hause?",
    "Welche Fußballmannschaft hat die meisten Meistertitel?",
    "¿Cuál es la mejor época para visitar Machu Picchu?",
    "¿Cómo se prepara una paella valenciana?",
    "Qual è la ricetta tradizionale della carbonara?",
    "Como faço para trocar o óleo do carro?",
    "Hoe maak ik een moestuin op mijn balkon?",
    "Jak ugotować pierogi ruskie?",
]

# Calibration fits on every other question; the rest are held out, for measuring how
# often a configuration refuses questions it never saw (`fourfold eval compare`).
CALIBRATION_QUESTIONS = OFF_DOMAIN_QUESTIONS[0::2]
HELD_OUT_QUESTIONS = OFF_DOMAIN_QUESTIONS[1::2]

# Pronounceable words that name nothing: a question about one of them is about
# something no document covers, like a made-up drug or a fictitious court case.
MADE_UP_WORDS = [
    "zelvorax", "quintrabel", "morvanex", "plaxitrine", "dorvelian", "kestramol", "vontaril", "brimoxate",
    "saludrane", "trevonium", "gallotrex", "nembrovia", "harquist", "lumbravex", "corvantis", "pelodrine",
    "wyndham-castell", "ostrevane", "fenzaprol", "quorvidine",
]

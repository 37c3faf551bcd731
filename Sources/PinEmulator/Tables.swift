// Word tables for the emulator. Shapes follow `shared/spec/pinterest-data.md` §1; the words are ours.

let categories: [String] = [
    "art", "beauty", "christmas", "diy-and-crafts", "education", "event-planning", "finance",
    "home-decor", "mens-fashion", "quotes", "tattoos", "travel", "vehicles",
]

/// Relative popularity of the categories (the original data set is uneven).
let categoryWeights: [Int] = [9, 8, 7, 10, 7, 6, 6, 9, 6, 7, 6, 11, 8]

let categoryWords: [[String]] = [
    ["Abstract Painting", "Watercolor", "Acrylic Pour", "Sketchbook", "Modern Art", "Canvas Art", "Drawing Ideas", "Oil Painting", "Pop Art", "Street Art"],
    ["Makeup Looks", "Skin Care", "Nail Art", "Hair Styles", "Eyeliner", "Glow Up", "Lip Color", "Face Mask", "Braids", "Eyebrows"],
    ["Christmas Tree", "Holiday Decor", "Gift Ideas", "Ornaments", "Xmas Cookies", "Advent Calendar", "Wreath", "Santa", "Stockings", "Nativity"],
    ["Summer Crafts For Kids", "Paper Flowers", "Mason Jar", "Upcycle", "Crochet", "Macrame", "Craft Ideas For Girls", "Diy For Kids", "Felt Crafts", "Toddler Crafts"],
    ["Classroom Ideas", "Math Games", "Study Tips", "Homeschool", "Science Fair", "Reading Nook", "Worksheets", "Teacher Hacks", "Flash Cards", "Stem"],
    ["Wedding Ideas", "Party Decor", "Birthday Party", "Baby Shower", "Table Settings", "Centerpieces", "Balloon Arch", "Invitations", "Bridal Shower", "Picnic"],
    ["Budget Planner", "Saving Money", "Investing", "Side Hustle", "Debt Free", "Frugal Living", "Money Tips", "Passive Income", "Credit Score", "Retirement"],
    ["Living Room", "Boho Decor", "Farmhouse", "Kitchen Design", "Bedroom Ideas", "Wall Decor", "Minimalist", "Cozy Home", "Plants", "Scandinavian"],
    ["Mens Style", "Streetwear", "Suits", "Sneakers", "Casual Outfits", "Watches", "Beard Styles", "Leather Jacket", "Denim", "Smart Casual"],
    ["Life Quotes", "Motivation", "Love Quotes", "Inspirational", "Funny Quotes", "Wisdom", "Positive Vibes", "Self Love", "Friendship", "Mindset"],
    ["Small Tattoos", "Sleeve Tattoo", "Fine Line", "Minimalist Tattoo", "Floral Tattoo", "Script", "Mandala", "Tiny Tattoos", "Geometric", "Back Piece"],
    ["Travel Tips", "Bucket List", "Beach Vacation", "Road Trip", "Backpacking", "Hidden Gems", "City Break", "Island Life", "Mountains", "Travel Photography"],
    ["Old School Cars", "Lowrider", "Muscle Cars", "Classic Cars", "Motorcycles", "Jdm", "Off Road", "Cadillac", "Vintage Trucks", "Supercars"],
]

let titleOpeners: [String] = [
    "25 Super Fun", "The Best", "Easy", "How to Make", "10 Ways to Try", "Simple", "Our Favorite", "DIY", "Stunning",
    "Budget", "Quick", "Beautiful", "Amazing", "Gorgeous", "Cute", "Creative", "Cozy", "The Ultimate Guide to",
]

let titleClosers: [String] = [
    "for Kids", "You Need to See", "on a Budget", "- Of Life and Lisa", "| Step by Step", "Ideas", "for Beginners",
    "That Will Inspire You", "💕", "✨", "🎄", "(2021)", "in 5 Minutes", "You’ll Love", "& More",
]

let sentences: [String] = [
    "Keep the kids busy this summer with these easy diy crafts and projects.",
    "Creative and fun ideas for every season.",
    "Click through for the full tutorial and free printable.",
    "This is one of my favorite looks of the year!",
    "Save this pin for later and follow for more.",
    "Nissan GT-R. Sick.",
    "A quick guide with everything you need to know.",
    "We tried it so you don’t have to — here’s what happened.",
    "Perfect for small spaces and tight budgets.",
    "Shop the look below 👇",
    "\"Be yourself; everyone else is already taken.\"",
    "Tap to see more ideas {updated weekly}.",
    "Find this pin and more on the board.",
    "Über easy, no special tools required.",
]

let posterFirst: [String] = [
    "Of Life & Lisa", "Ray Uyemura", "Home Decor Ideas", "The Budget Mom", "Crafty Morning", "Tattoo Ideas", "Mens Fashion Daily",
    "Nomadic Matt", "Quotes Daily", "Art by Mia", "Beauty Bay", "Christmas Joy", "Teach Starter", "Party City", "Classic Car Club",
    "Jen Smith", "Marco Rossi", "Aiko Tanaka", "Chloé Dupont", "Søren Larsen", "Zoë Adams",
]

let posterSuffix: [String] = [
    "", "", "", "", " | Lifestyle Blog", " | DIY & Crafts", " {Official}", " ✨", " 🌸", "  ", " ", " | Travel", " - Shop",
]

let firstNames: [String] = [
    "Abigail", "Dylan", "Andrew", "Alexandra", "Christopher", "Kimberly", "Michael", "Jessica", "Brian", "Amanda",
    "Thomas", "Rachel", "Daniel", "Emily", "David", "Sarah", "Joseph", "Ashley", "Kevin", "Megan", "Robert",
    "Elizabeth", "Jason", "Stephanie", "Ryan", "Nicole", "Eric", "Heather", "Matthew", "Melissa",
]

let lastNames: [String] = [
    "Ali", "Holmes", "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis",
]

let countries: [String] = [
    "Albania", "Armenia", "Antarctica (the territory South of 60 deg S)", "Cote d'Ivoire", "Svalbard & Jan Mayen Islands",
    "Afghanistan", "Algeria", "American Samoa", "Andorra", "Angola", "Argentina", "Aruba", "Australia", "Austria",
    "Bangladesh", "Belgium", "Bermuda", "Bolivia", "Bosnia and Herzegovina", "Brazil", "British Indian Ocean Territory (Chagos Archipelago)",
    "Bulgaria", "Cambodia", "Canada", "Chile", "China", "Colombia", "Congo", "Cook Islands", "Croatia", "Cyprus",
    "Czech Republic", "Denmark", "Ecuador", "Egypt", "Estonia", "Falkland Islands (Malvinas)", "Fiji", "Finland", "France",
    "French Southern Territories", "Germany", "Ghana", "Greece", "Guinea-Bissau", "Heard Island and McDonald Islands",
    "Holy See (Vatican City State)", "Hungary", "Iceland", "India", "Indonesia", "Ireland", "Israel", "Italy", "Jamaica",
    "Japan", "Kenya", "Korea", "Lao People's Democratic Republic", "Libyan Arab Jamahiriya", "Maldives", "Mexico",
    "Micronesia", "Morocco", "Netherlands Antilles", "New Zealand", "Nigeria", "Norway", "Pakistan", "Peru", "Philippines",
    "Poland", "Portugal", "Reunion", "Saint Barthelemy", "Sao Tome and Principe", "South Georgia and the South Sandwich Islands",
    "Spain", "Sweden", "Switzerland", "Thailand", "Timor-Leste", "Turkey", "Uganda", "United States Minor Outlying Islands",
    "United States of America", "Venezuela", "Vietnam", "Wallis and Futuna", "Zimbabwe",
]

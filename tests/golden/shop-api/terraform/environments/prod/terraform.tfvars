# prod values that kit cannot know. 203.0.113.0/24 is a documentation range:
# replace it with your operators' and CI runners' addresses before applying.
api_allowed_cidrs = ["203.0.113.0/24"]

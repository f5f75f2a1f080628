"""tests/programs: public PyTorch programs, each run with torch and with its imports rewritten
to edugrad (test_programs.py). pending/ holds programs that need names edugrad lacks today;
each says which at its top. They are not collected: move one up when its names land."""

collect_ignore = ["pending"]

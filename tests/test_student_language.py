"""The corpus generator shipped to students for chapter 13 (``student/language.py``): it is
reproducible from its generator, every sentence follows the documented grammar (a capital
appears with its own country, an animal with its own food, the rules with their stated
probabilities), the groups are disjoint, and the labels of the entailment-style pairs match the
relations."""
from __future__ import annotations

import torch

from student import language


def test_corpus_is_reproducible_and_follows_the_grammar() -> None:
    first = language.generate_corpus(2000, torch.Generator().manual_seed(0))
    assert first == language.generate_corpus(2000, torch.Generator().manual_seed(0))
    capitals = dict(language.CAPITALS)
    capital_sentences = 0
    for sentence in first:
        countries = [w for w in sentence if w in capitals]
        cities = [w for w in sentence if w in capitals.values()]
        if countries and cities:
            capital_sentences += 1
            assert capitals[countries[0]] == cities[0], sentence
        for singular, plural, food in language.ANIMALS:
            if singular in sentence or plural in sentence:
                foods = [f for _, _, f in language.ANIMALS if f in sentence]
                assert foods in ([], [food]), sentence
    # the capital rule has probability 0.25, and two of its three forms name both words
    assert abs(capital_sentences / 2000 - 0.25) < 0.05


def test_groups_are_disjoint_and_relations_use_them() -> None:
    words = [w for group in language.GROUPS.values() for w in group]
    assert len(words) == len(set(words))
    for pairs in language.RELATIONS.values():
        assert len({language.group_of(a) for a, _ in pairs}) == 1
        assert len({language.group_of(b) for _, b in pairs}) == 1


def test_pair_labels_match_the_relations() -> None:
    pairs = language.generate_pairs(500, torch.Generator().manual_seed(1))
    capitals = {city: country for country, city in language.CAPITALS}
    plurals = {plural: singular for singular, plural, _ in language.ANIMALS}
    for a, b, label in pairs:
        if a[-1] in capitals:
            assert label == int(capitals[a[-1]] == b[-1])
        else:
            assert label == int(plurals[a[1]] == b[1])
    share = sum(label for _, _, label in pairs) / len(pairs)
    assert 0.4 < share < 0.6
    assert all(label == 1 for *_, label in
               language.generate_pairs(100, torch.Generator().manual_seed(2), 1.0))

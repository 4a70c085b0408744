"""A/B significance (issue #25 item 8) by hand: the pooled two-proportion z-test, Newcombe's
interval of the difference, Bonferroni over the treatments, a winner only when significant with
enough subjects per arm (the experiments here are completed: decision points). Φ and its inverse
are those of a normal table; z(97.5 %) = 1.959964, z² = 3.841459; z(98.75 %) = 2.241403."""

from __future__ import annotations

import pytest

from db.analytics.experiments import MIN_ARM_SAMPLE, Arm, compare, evaluate, newcombe, wilson

Z95 = 1.959964


def final(*args, **kwargs):
    """The verdict of a completed experiment (a decision point: a winner can be named; the interim
    case is in test_experiment_peeking.py)."""
    return evaluate(*args, status="completed", **kwargs)


def approx(x: float) -> object:
    return pytest.approx(x, abs=2e-7)


def test_the_issue_example_is_significant_and_b_wins():
    # control 100/1000, B 130/1000: pooled p = 230/2000 = 0.115,
    # SE = sqrt(0.115 x 0.885 x (1/1000 + 1/1000)) = sqrt(0.00020355) = 0.0142671,
    # z = (0.13 - 0.10) / 0.0142671 = 2.102741, p = 2 x (1 - Φ(2.102741)) = 2 x 0.0177442 = 0.0354885 < 0.05
    c = compare(Arm(1000, 100), Arm(1000, 130), 0.95)
    assert c.difference == pytest.approx(0.03)
    assert c.z == pytest.approx(0.03 / (0.115 * 0.885 * 2 / 1000) ** 0.5) == pytest.approx(2.102741, abs=1e-6)
    assert c.p_value == pytest.approx(0.0354885, abs=1e-7)
    # Wilson 100/1000: centre (0.1 + 3.841459/2000) / (1 + 3.841459/1000) = 0.1019207 / 1.0038415 = 0.1015307,
    #   half 1.959964 / 1.0038415 x sqrt(0.1 x 0.9 / 1000 + 3.841459 / 4e6) = 1.952464 x 0.00953731 = 0.0186213
    #   -> (0.0829094, 0.1201520)
    # Wilson 130/1000: centre 0.1319207 / 1.0038415 = 0.1314159, half 1.952464 x sqrt(0.0001131 + 0.00000096)
    #   = 1.952464 x 0.01067991 = 0.0208521 -> (0.1105638, 0.1522680)
    assert wilson(Arm(1000, 100), Z95) == (approx(0.0829094), approx(0.1201520))
    assert wilson(Arm(1000, 130), Z95) == (approx(0.1105638), approx(0.1522680))
    # Newcombe: low = 0.03 - sqrt((0.13 - 0.1105638)^2 + (0.1201520 - 0.1)^2) = 0.03 - sqrt(0.00078387) = 0.0020023
    #          high = 0.03 + sqrt((0.1522680 - 0.13)^2 + (0.1 - 0.0829094)^2) = 0.03 + sqrt(0.00078795) = 0.0580705
    assert (c.ci_low, c.ci_high) == (approx(0.0020023), approx(0.0580705))
    v = final({"control": Arm(1000, 100), "B": Arm(1000, 130)}, "control", 0.05)
    assert (v.winner, v.compared) == ("B", "B")
    assert (v.p_value, v.ci_low, v.ci_high) == (approx(0.0354885), approx(0.0020023), approx(0.0580705))
    b = v.significance["vs_control"]["B"]
    assert (b["significant"], b["enough_sample"], b["ci_level"], b["adjusted_p_value"]) == (True, True, 0.95, b["p_value"])
    assert v.significance["arms"] == {"B": {"n": 1000, "conversions": 130, "rate": 0.13},
                                      "control": {"n": 1000, "conversions": 100, "rate": 0.1}}
    assert (v.significance["control"], v.significance["comparisons"], v.significance["min_arm_sample"]) == \
        ("control", 1, MIN_ARM_SAMPLE)


def test_the_control_wins_when_the_treatment_is_significantly_worse():
    # the same counts the other way round: difference -0.03, the same p, the interval mirrored
    v = final({"control": Arm(1000, 130), "B": Arm(1000, 100)}, "control", 0.05)
    assert (v.winner, v.compared) == ("control", "B")
    assert (v.p_value, v.ci_low, v.ci_high) == (approx(0.0354885), approx(-0.0580705), approx(-0.0020023))


def test_a_small_sample_with_a_large_difference_has_no_winner():
    # control 2/10, B 8/10: pooled 10/20 = 0.5, SE = sqrt(0.5 x 0.5 x (1/10 + 1/10)) = sqrt(0.05) = 0.2236068,
    # z = 0.6 / 0.2236068 = 2.683282, p = 2 x Φ(-2.683282) = 0.0072904: significant, but 10 < 30 per arm
    v = final({"control": Arm(10, 2), "B": Arm(10, 8)}, "control", 0.05)
    assert v.winner is None and v.compared == "B"
    assert v.p_value == approx(0.0072904)
    assert v.significance["vs_control"]["B"]["significant"] is True
    assert v.significance["vs_control"]["B"]["enough_sample"] is False
    # the experiment's own minimum_sample_size raises the bar: 1000 per arm < 1500, no winner either
    assert final({"control": Arm(1000, 100), "B": Arm(1000, 130)}, "control", 0.05, 1500).winner is None


def test_equal_rates_give_p_one_and_no_winner():
    # control 50/500, B 50/500: z = 0 / SE = 0, p = 2 x Φ(0) = 1
    # Wilson 50/500: centre (0.1 + 3.841459/1000) / (1 + 3.841459/500) = 0.1038415 / 1.0076829 = 0.1030497,
    #   half 1.959964 / 1.0076829 x sqrt(0.09/500 + 3.841459/1e6) = 1.945021 x 0.0135588 = 0.0263722
    #   -> (0.0766776, 0.1294219); interval ± sqrt(0.0233224^2 + 0.0294219^2) = ± sqrt(0.00140958) = ± 0.0375444
    v = final({"control": Arm(500, 50), "B": Arm(500, 50)}, "control", 0.05)
    assert v.winner is None and v.compared == "B"
    assert (v.p_value, v.ci_low, v.ci_high) == (1.0, approx(-0.0375444), approx(0.0375444))


def test_a_zero_success_arm():
    # control 0/40, B 6/40: pooled 6/80 = 0.075, SE = sqrt(0.075 x 0.925 x (2/40)) = sqrt(0.00346875) = 0.0588961,
    # z = 0.15 / 0.0588961 = 2.546858, p = 2 x Φ(-2.546858) = 0.0108698 -> B wins (40 >= 30 per arm)
    # Wilson 0/40: (0, (3.841459/40) / (1 + 3.841459/40)) = (0, 0.0960365 / 1.0960365) = (0, 0.0876216)
    # Wilson 6/40: centre (0.15 + 3.841459/80) / 1.0960365 = 0.1980182 / 1.0960365 = 0.1806675,
    #   half 1.959964 / 1.0960365 x sqrt(0.15 x 0.85 / 40 + 3.841459/6400) = 1.788229 x 0.06154452 = 0.1100557
    #   -> (0.0706118, 0.2907232)
    # Newcombe: low = 0.15 - sqrt(0.0793882^2 + 0.0876216^2) = 0.15 - 0.1182371 = 0.0317629,
    #           high = 0.15 + sqrt(0.1407232^2 + 0^2) = 0.2907232 (the Wald interval would give the
    #           control arm no spread at all: sqrt(0 x 1 / 40) = 0)
    assert wilson(Arm(40, 0), Z95) == (0.0, approx(0.0876216))
    v = final({"control": Arm(40, 0), "B": Arm(40, 6)}, "control", 0.05)
    assert (v.winner, v.p_value, v.ci_low, v.ci_high) == ("B", approx(0.0108698), approx(0.0317629), approx(0.2907232))


def test_no_conversions_anywhere_leaves_the_test_undefined():
    # control 0/50, B 0/50: pooled 0, SE 0, z = 0/0 -> NULL; the interval is still defined:
    # ± the Wilson upper bound of 0/50 = (3.841459/50) / (1 + 3.841459/50) = 0.0768292 / 1.0768292 = 0.0713476
    c = compare(Arm(50, 0), Arm(50, 0), 0.95)
    assert (c.difference, c.z, c.p_value) == (0.0, None, None)
    assert (c.ci_low, c.ci_high) == (approx(-0.0713476), approx(0.0713476))
    v = final({"control": Arm(50, 0), "B": Arm(50, 0)}, "control", 0.05)
    assert (v.winner, v.compared, v.p_value) == (None, "B", None)


def test_no_outcomes_no_control_no_treatment_all_null():
    # assigned but no outcome reported: n = 0 in both arms
    v = final({"control": Arm(0, 0), "B": Arm(0, 0)}, "control", 0.05)
    assert (v.winner, v.compared, v.p_value, v.ci_low, v.ci_high) == (None, None, None, None, None)
    assert v.significance["vs_control"]["B"] == {
        "difference": None, "z": None, "p_value": None, "adjusted_p_value": None, "ci_level": 0.95,
        "ci_low": None, "ci_high": None, "significant": False, "enough_sample": False}
    # no arm called control (and none named by the control configuration): nothing is compared
    v = final({"A": Arm(1000, 100), "B": Arm(1000, 130)}, "control", 0.05)
    assert (v.winner, v.compared, v.p_value) == (None, None, None)
    assert (v.significance["control"], v.significance["comparisons"], v.significance["vs_control"]) == (None, 0, {})
    # ... and its decision names what is missing (review 2 R9), completed or running with a plan
    assert v.significance["decision"] == "no control arm: no variant named 'control'"
    running = evaluate({"A": Arm(1000, 100), "B": Arm(1000, 130)}, "old", 0.05, 400)
    assert running.significance["decision"] == "no control arm: no variant named 'old'"
    # the control alone
    assert final({"control": Arm(100, 10)}, "control", 0.05).winner is None
    assert evaluate({"control": Arm(100, 10)}, "control", 0.05, 400).significance["decision"] == (
        "no treatment arm: only the control is assigned")
    # nothing assigned yet: a shortfall, 0 of the 400 planned per arm
    assert evaluate({}, "control", 0.05, 400).significance["decision"] == "interim: 0 of 400 planned per arm"
    assert newcombe(Arm(0, 0), Arm(10, 1), 0.95) == (None, None)


def test_bonferroni_over_two_treatments():
    # control 100/1000, B 130/1000, C 100/1000: k = 2 comparisons. B's p 0.0354885 x 2 = 0.0709769 >= 0.05:
    # not significant once corrected (it would be alone); C's p = 1 (equal rates). No winner.
    # B's interval at 1 - 0.05/2 = 97.5 %, z = Φ⁻¹(0.9875) = 2.241403:
    #   Wilson 100/1000 -> (0.0806949, 0.1233041), 130/1000 -> (0.1080004, 0.1556987)
    #   low = 0.03 - sqrt(0.0219996^2 + 0.0233041^2) = 0.03 - 0.0320478 = -0.0020478
    #   high = 0.03 + sqrt(0.0256987^2 + 0.0193051^2) = 0.03 + 0.0321421 = 0.0621421 (contains 0)
    v = final({"control": Arm(1000, 100), "B": Arm(1000, 130), "C": Arm(1000, 100)}, "control", 0.05)
    assert (v.winner, v.compared) == (None, "B")  # B: the treatment with the highest rate
    assert (v.p_value, v.ci_low, v.ci_high) == (approx(0.0709769), approx(-0.0020478), approx(0.0621421))
    assert v.significance["vs_control"]["B"]["p_value"] == approx(0.0354885)
    assert v.significance["vs_control"]["C"]["adjusted_p_value"] == 1.0
    assert v.significance["comparisons"] == 2 and v.significance["vs_control"]["B"]["ci_level"] == 0.975
    # at a 90 % level (α = 0.10) the corrected 0.0709769 < 0.10: B wins
    assert final({"control": Arm(1000, 100), "B": Arm(1000, 130), "C": Arm(1000, 100)}, "control", 0.10).winner == "B"

"""Figures from saved results."""


def test_a_history_of_a_log_metric_is_plotted_on_a_linear_axis(tmp_path):
    import warnings

    from l2o.plots import plot_history

    (tmp_path / "h.csv").write_text("episode,meta_steps,seconds,val_log_final,best,nan_skips\n"
                                    "0,0,0.0,-0.15,-0.15,0\n25,100,600,-3.9,-3.9,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when asked to log-scale negative values
        plot_history(tmp_path / "h.csv", tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_two_learned_rules_of_one_kind_get_different_colours_and_dashes():
    import matplotlib.pyplot as plt

    from l2o.plots import _curves

    curve = {"mean": [1.0, 0.5, 0.2]}
    lstm = {"name": "routed", "rules": {}}
    results = {"num_problems": 2, "split": "test", "rules": {
        "LSTM": {"rule": lstm, **curve}, "LSTM-sub": {"rule": lstm, **curve},
        "adam": {"rule": {"name": "adam", "lr": 0.01}, **curve}}}
    fig, ax = plt.subplots()
    _curves(ax, results, band=False)
    styles = {line.get_label(): (line.get_color(), line.get_linestyle()) for line in ax.get_lines()}
    plt.close(fig)
    assert styles["LSTM"] == ("tab:red", "-") and styles["LSTM-sub"] == ("darkcyan", "-.")
    assert styles["adam (lr 0.01)"] == ("tab:green", "--")

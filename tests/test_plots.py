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

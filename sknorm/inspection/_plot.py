"""Heatmap of an invariance table (matplotlib is imported only when drawing)."""

import numpy as np
import pandas as pd

_CALLER = "plot_invariance_table"
_INVARIANT_COLOR = "#1b9e77"
_CHANGED_COLOR = "#d95f02"
_MISSING_COLOR = "#bdbdbd"


def plot_invariance_table(table, *, ax=None, annotate=True):
    """Draw an invariance table as a heatmap.

    One row per transformer, one column per transformation of the data, as
    returned by :func:`invariance_table`: a picture of what each transformer
    forgets, in the layout of the invariance table of the layer-normalization
    paper.

    Parameters
    ----------
    table : DataFrame
        Either the boolean table returned by :func:`invariance_table` (cells
        invariant, changed or missing are drawn in green, orange and grey) or its
        ``deviation`` table (cells coloured by ``log10`` of the relative
        deviation; missing cells in grey).

    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    annotate : bool, default=True
        Write each cell's value in it: "yes" / "no" / "n/a" for a boolean table,
        the deviation in scientific notation for a deviation table.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    See Also
    --------
    invariance_table : Compute the table.

    Notes
    -----
    matplotlib is an optional dependency of sknorm: it is imported when this
    function is called, and an ImportError says how to install it if missing.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
       arXiv:1607.06450, 2016, Table 1.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.preprocessing import Normalizer, StandardScaler
    >>> from sknorm.inspection import invariance_table, plot_invariance_table
    >>> X = np.random.default_rng(0).normal(size=(20, 4))
    >>> table = invariance_table([StandardScaler(), Normalizer()], X, random_state=0)
    >>> ax = plot_invariance_table(table)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['StandardScaler()', 'Normalizer()']
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError as exc:
        raise ImportError(
            f"{_CALLER} requires matplotlib, an optional dependency of sknorm. "
            "Install it with `pip install matplotlib`."
        ) from exc
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"{_CALLER} expects the DataFrame returned by invariance_table, got "
            f"{type(table).__name__}."
        )
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(f"{_CALLER} got an empty table of shape {table.shape}.")

    is_bool = all(pd.api.types.is_bool_dtype(dtype) for dtype in table.dtypes)
    if not is_bool and not all(
        pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes
    ):
        raise TypeError(
            f"{_CALLER} expects a boolean table or a numeric deviation table, got "
            f"columns of dtypes {sorted({str(d) for d in table.dtypes})}."
        )
    missing = table.isna().to_numpy()
    if is_bool:
        data = table.astype("float64").fillna(0.0).to_numpy()
        cmap = ListedColormap([_CHANGED_COLOR, _INVARIANT_COLOR])
        limits = {"vmin": 0.0, "vmax": 1.0}
    else:
        # Deviations are drawn between 1e-16 (rounding) and 10 (an infinite
        # deviation, from an output of another shape, is drawn as 10).
        data = np.log10(np.clip(table.to_numpy(dtype=np.float64), 1e-16, 10.0))
        cmap = plt.get_cmap("viridis")
        limits = {"vmin": -16.0, "vmax": 1.0}
    cmap = cmap.with_extremes(bad=_MISSING_COLOR)
    data = np.ma.masked_array(data, mask=missing)

    if ax is None:
        _, ax = plt.subplots(
            figsize=(1.1 * table.shape[1] + 3, 0.45 * table.shape[0] + 1.5)
        )
    image = ax.imshow(data, cmap=cmap, aspect="auto", **limits)
    ax.set_xticks(
        range(table.shape[1]),
        labels=[str(c).replace("_", "\n") for c in table.columns],
    )
    ax.set_yticks(range(table.shape[0]), labels=[str(i) for i in table.index])
    ax.tick_params(top=True, bottom=False, labeltop=True, labelbottom=False)
    if not is_bool:
        ax.figure.colorbar(image, ax=ax, label="log10(relative deviation)")
    if annotate:
        for (i, j), value in np.ndenumerate(table.to_numpy(dtype=object)):
            if missing[i, j]:
                text = "n/a"
            elif is_bool:
                text = "yes" if value else "no"
            else:
                text = f"{float(value):.0e}"
            # White text on the dark (low-deviation) end of viridis.
            dark = not is_bool and not missing[i, j] and data[i, j] < -6
            color = "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return ax

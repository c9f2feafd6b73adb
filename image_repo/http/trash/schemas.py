import marshmallow as ma

from image_repo.http.images.schemas import ImageSchema, PageQuerySchema


class TrashListQuerySchema(PageQuerySchema):
    pass


class TrashedImageSchema(ImageSchema):
    trashed_at = ma.fields.AwareDateTime(
        required=True, metadata={"description": "When the image was deleted to the trash."}
    )
    purge_at = ma.fields.AwareDateTime(
        required=True,
        metadata={
            "description": "When it goes for good: `image-repo gc` purges it on its first run "
            "from then on (`IMAGE_REPO_TRASH_DAYS` after `trashed_at`)."
        },
    )


class TrashPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TrashedImageSchema), required=True)
    next_cursor = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class TrashEmptiedSchema(ma.Schema):
    purged = ma.fields.Integer(
        required=True, metadata={"description": "How many images were deleted for good."}
    )
